"""The user's own data in a rehearsal (``rehearse --restore BACKUP``): the backup restored into the from-release by
Immich's own maintenance flow, a copy of the library put in the deployment's NAS folder (the user's folder is only
read), and what is checked before and after the upgrade.

Checked each time: every user (``GET /api/admin/users``) and every album with its members and asset count (``GET
/api/albums`` as each user, with an API key written for them into the throwaway release's database), every asset of
the copy served with its checksum and its original byte for byte as the user's own file, and Immich's integrity checks
run to completion. After the upgrade, anything lost or changed since before, and new missing files or checksum
mismatches, fail the phase by name.

Works on any ``Deployment``: the NAS is the target's ``nas_root``, the database is reached by ``Deployment.psql``.
Immich enters and leaves maintenance mode inside its container (its main process starts the workers again), so no
platform restart is involved. A from-release without the restore flow (Immich before v2.5) gets the backup as
Immich's documentation restores one: the server stopped, the SQL fed to psql, the server started again
(``Deployment.restore_with_psql``). A release without integrity checks (before v3) is checked without them; after an
upgrade to one that has them, every missing file or mismatch they find fails the phase (the copy was served byte for
byte before).
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from ..backups import IntegrityFindings, copy_library, inspect_backup, integrity_summary, sample_originals
from ..backups.backup_file import BackupFile, BackupProblem, check_postgres
from ..backups.integrity import has_integrity_checks, media_relative
from ..backups.psql_restore import PsqlRestore, has_restore_flow
from ..backups.restore import RestoreFailed, grant_api_key, restore_backup
from ..backups.sql_access import PsqlConnection
from ..targets.base import Target
from ..trust_store import system_trust
from .deployments import Deployment
from .releases import RehearsalError

SHOWN = 10
TIMEOUT = httpx.Timeout(30.0, read=120.0)


@dataclass(frozen=True)
class RestoreRequest:
    """What ``--restore``, ``--library`` and ``--library-sample`` asked for."""

    backup: Path
    library: Path | None = None
    sample: int | None = None

    def check(self, deployment: Deployment[Target]) -> BackupFile:
        """The backup's own problems, before anything is deployed; RehearsalError says what to fix."""
        if self.sample is not None and (self.library is None or self.sample < 1):
            raise RehearsalError("--library-sample N needs --library DIR and N of at least 1")
        if self.library is not None and not self.library.is_dir():
            raise RehearsalError(f"the library folder {self.library} does not exist or is not a folder: give the "
                                 "folder Immich uses as its media location (the one holding upload/ and library/)")
        try:
            info = inspect_backup(self.backup)
        except BackupProblem as exc:
            raise RehearsalError(str(exc)) from None
        if info.real_immich and deployment.builds_doubles:
            raise RehearsalError(f"the backup {self.backup.name} is of a real Immich server: on {deployment} the "
                                 "releases are builds of the Immich API double; rehearse it with the real images "
                                 "(--runtime containers --images pinned, or a cluster with real Immich)")
        if not info.real_immich and not deployment.builds_doubles:
            raise RehearsalError(f"the backup {self.backup.name} was written by the Immich API double: it restores "
                                 "only into the double's builds (--images local, --cluster offline)")
        return info


@dataclass
class AlbumState:
    name: str
    owner: str
    members: list[str]
    assets: int


@dataclass
class RestoredState:
    users: list[str]
    albums: dict[str, AlbumState]
    findings: IntegrityFindings | None
    """None: the release has no integrity checks (Immich before v3)."""


@dataclass
class RestoredLibrary:
    """The restored backup in the running from-release, and what was seen of it before the upgrade."""

    request: RestoreRequest
    admin_key: str = ""
    user_keys: dict[str, str] = field(default_factory=dict)
    emails: dict[str, str] = field(default_factory=dict)
    copied: list[str] = field(default_factory=list)
    copied_bytes: int = 0
    assets: list[tuple[str, str, str]] | None = None
    """(id, owner id, path in the library) of every asset of the copy, as the restored database had them."""
    before: RestoredState | None = None

    def describe_copy(self) -> str:
        if self.request.library is None:
            return "no library given (--library DIR): only the database was restored"
        how = (f"a sample of {self.request.sample} asset(s) per user" if self.request.sample is not None
               else "whole")
        return (f"library copy: {how}, {len(self.copied)} file(s), {self.copied_bytes / 2**20:.1f} MiB, from "
                f"{self.request.library} (only read)")


def restore(deployment: Deployment[Target], request: RestoreRequest,
            progress: Callable[[str], None]) -> RestoredLibrary:
    """Restore the backup into the running from-release, give every restored user an API key, and copy the library."""
    target = deployment.running()
    info = request.check(deployment)
    major = int(deployment.psql("SHOW server_version_num").strip() or 0) // 10000
    try:
        check_postgres(info, major)
    except BackupProblem as exc:
        raise RehearsalError(str(exc)) from None
    restored = RestoredLibrary(request)
    with httpx.Client(base_url=target.lan.url, headers={"x-api-key": target.api_key}, timeout=TIMEOUT,
                      verify=system_trust()) as client:
        flow = has_restore_flow(client)  # False before Immich v2.5: restored with psql below
        if flow:
            progress(f"restoring {request.backup.name} through Immich's maintenance flow")
            try:
                result = restore_backup(client, request.backup, progress=progress)
            except RestoreFailed as exc:
                raise AssertionError(f"the backup {request.backup.name} does not restore into {deployment}: {exc}") \
                    from None
            progress(f"restored in {result.seconds:.1f}s (tasks: {', '.join(result.tasks)})")
    if not flow:
        progress(f"the from-release has no restore flow (Immich before v2.5): restoring {request.backup.name} as "
                 "Immich's documentation does, with psql while the server is stopped")
        began = time.monotonic()
        errors = deployment.restore_with_psql(PsqlRestore.of(request.backup))
        progress(f"restored with psql in {time.monotonic() - began:.1f}s" + (f"; {errors}" if errors else ""))
    database = PsqlConnection(deployment.psql)
    restored.admin_key = grant_api_key(database, name="rehearsal")
    target._api_key = restored.admin_key  # the suite's own key went with the database the backup replaced
    for user_id, email in _users(database):
        restored.emails[user_id] = email
        restored.user_keys[user_id] = grant_api_key(database, name="rehearsal", user_id=user_id)
    if request.library is not None:
        sample = None
        if request.sample is not None:
            sample = sample_originals(database, Path(str(target.media_location)), request.sample)
        restored.copied = place_library(request.library, target.nas_root, sample)
        restored.copied_bytes = sum((target.nas_root / p).stat().st_size for p in restored.copied)
    progress(restored.describe_copy())
    return restored


def _users(database: PsqlConnection) -> list[tuple[str, str]]:
    tables = {r[0] for r in database.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'").fetchall()}
    query = ("SELECT id, email FROM users WHERE deleted_at IS NULL" if "users" in tables else
             'SELECT id, email FROM "user" WHERE "deletedAt" IS NULL')
    return [(str(r[0]), str(r[1])) for r in database.execute(query).fetchall()]


def place_library(library: Path, nas: Path, sample: list[str] | None) -> list[str]:
    """Copy the library (whole, or the ``sample`` paths) into ``nas``; the folders and files the copy adds take the
    NAS folder's owner and are writable by the server (as the release's own are). The relative paths copied."""
    existing = set(nas.rglob("*"))
    copy_library(library, nas, sample)
    root = nas.stat()
    for path in sorted(set(nas.rglob("*")) - existing):
        if os.geteuid() == 0:
            os.chown(path, root.st_uid, root.st_gid)
        path.chmod(root.st_mode & 0o7777 if path.is_dir() else 0o666)
    wanted = sample if sample is not None else [str(p.relative_to(nas)) for p in nas.rglob("*") if p.is_file()]
    return sorted(p for p in wanted if (library / p).is_file() and (nas / p).is_file())


def observe(deployment: Deployment[Target], restored: RestoredLibrary, label: str,
            progress: Callable[[str], None]) -> RestoredState:
    """Check the restored library as it stands; the state seen. AssertionError names every problem."""
    target = deployment.running()
    problems: list[str] = []
    with _client(target, restored.admin_key) as admin:
        users = admin.get("/api/admin/users")
        users.raise_for_status()
        listed = sorted(u["email"] for u in users.json())
        missing_users = sorted(set(restored.emails.values()) - set(listed))
        problems += [f"user {email} is not listed by GET /api/admin/users" for email in missing_users]
        albums: dict[str, AlbumState] = {}
        for user_id, key in restored.user_keys.items():
            with _client(target, key) as client:
                answer = client.get("/api/albums")
                if answer.status_code != 200:
                    problems.append(f"GET /api/albums as {restored.emails[user_id]} answered {answer.status_code}")
                    continue
                for album in answer.json():  # v3: the owner is among albumUsers, with the role "owner"
                    users = album.get("albumUsers", [])
                    owner = next((m["user"]["email"] for m in users if m["role"] == "owner"), "no owner")
                    albums[album["id"]] = AlbumState(
                        album["albumName"], owner, sorted(f"{m['user']['email']} ({m['role']})" for m in users),
                        int(album["assetCount"]))
        problems += _unlisted_albums(deployment, albums)
        checked = 0
        if restored.assets is None:  # after the upgrade: the same assets, even those the database lost
            restored.assets = _copied_assets(deployment, target, restored)
        clients = {user_id: _client(target, key) for user_id, key in restored.user_keys.items()}
        try:
            for asset_id, owner_id, relative in restored.assets:
                assert restored.request.library is not None
                problems += check_restored_asset(clients[owner_id], asset_id, restored.request.library / relative)
                checked += 1
        finally:
            for client in clients.values():
                client.close()
        findings = None
        if has_integrity_checks(admin):
            progress(f"checking Immich's integrity {label} the upgrade")
            findings = integrity_summary(admin)
    integrity = "not in this release (Immich before v3)"
    if findings is not None:
        findings = findings.relative_to(str(target.media_location))
        counts = findings.counts
        integrity = (f"{counts.get('missing_file', 0)} missing, {counts.get('checksum_mismatch', 0)} checksum "
                     f"mismatches, {counts.get('untracked_file', 0)} untracked")
    progress(f"{label} the upgrade: {len(listed)} user(s), {len(albums)} album(s), {checked} asset(s) served byte "
             f"for byte; integrity: {integrity}")
    state = RestoredState(listed, albums, findings)
    if restored.before is not None:
        problems += compare(restored.before, state, copied=restored.copied)
    assert not problems, (f"{len(problems)} problem(s) in the restored library {label} the upgrade:\n  "
                          + "\n  ".join(problems))
    return state


def compare(before: RestoredState, after: RestoredState, *, copied: list[str] | None = None) -> list[str]:
    """What the upgrade lost or changed: users, albums (name, owner, members, asset count), new damaged files.
    ``copied``: the library copy's files (relative paths), which stand for the integrity findings before the upgrade
    when that release had no checks."""
    problems = [f"user {email} is gone after the upgrade" for email in sorted(set(before.users) - set(after.users))]
    for album_id, was in sorted(before.albums.items(), key=lambda item: item[1].name):
        now = after.albums.get(album_id)
        named = f"album '{was.name}' of {was.owner} ({album_id})"
        if now is None:
            problems.append(f"{named} is gone after the upgrade")
            continue
        if lost := sorted(set(was.members) - set(now.members)):
            problems.append(f"{named} lost its member(s) {', '.join(lost)} in the upgrade")
        if now.assets != was.assets:
            problems.append(f"{named} had {was.assets} asset(s), now {now.assets}")
        if now.name != was.name:
            problems.append(f"{named} is now named '{now.name}'")
    if after.findings is None:
        return problems
    baseline = before.findings
    if baseline is None:  # a release without the checks: every file of the copy was served byte for byte, so a
        # finding on one of them is new; the files left out of a sample are missing by design
        inside = set(copied or [])
        baseline = IntegrityFindings(counts={}, paths={kind: [p for p in paths if p not in inside]
                                                      for kind, paths in after.findings.paths.items()})
    for kind, paths in after.findings.new_since(baseline).items():
        shown = ", ".join(paths[:SHOWN]) + (f" and {len(paths) - SHOWN} more" if len(paths) > SHOWN else "")
        problems.append(f"{len(paths)} new {kind.replace('_', ' ')}(s) after the upgrade: {shown}")
    return problems


def check_restored_asset(client: httpx.Client, asset_id: str, original: Path) -> list[str]:
    """An asset of the copy: Immich serves it with the checksum of the user's file and its bytes unchanged."""
    digest, size = hashlib.sha1(), 0
    with original.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
            size += len(block)
    info = client.get(f"/api/assets/{asset_id}")
    if info.status_code != 200:
        return [f"asset {asset_id} ({original.name}): GET /api/assets/{asset_id} answered {info.status_code}"]
    problems = []
    if base64.b64decode(info.json()["checksum"]) != digest.digest():
        problems.append(f"asset {asset_id}: Immich's checksum is not that of {original}")
    served, served_size = hashlib.sha1(), 0
    with client.stream("GET", f"/api/assets/{asset_id}/original") as answer:
        if answer.status_code != 200:
            return [*problems, f"asset {asset_id}: its original answered {answer.status_code}"]
        for block in answer.iter_bytes():
            served.update(block)
            served_size += len(block)
    if served.digest() != digest.digest() or served_size != size:
        problems.append(f"asset {asset_id}: the original served ({served_size} bytes) is not {original} "
                        f"({size} bytes) byte for byte")
    return problems


def _client(target: Target, key: str) -> httpx.Client:
    return httpx.Client(base_url=target.lan.url, headers={"x-api-key": key}, timeout=TIMEOUT, verify=system_trust())


def _tables(database: PsqlConnection) -> set[str]:
    return {r[0] for r in database.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'").fetchall()}


def _unlisted_albums(deployment: Deployment[Target], listed: dict[str, AlbumState]) -> list[str]:
    """Albums in the database that no user's ``GET /api/albums`` lists."""
    database = PsqlConnection(deployment.psql)
    query = ("SELECT id, album_name FROM albums WHERE deleted_at IS NULL" if "albums" in _tables(database) else
             'SELECT id, "albumName" FROM album WHERE "deletedAt" IS NULL')
    return [f"album '{name}' ({album_id}) is in the database but no user's GET /api/albums lists it"
            for album_id, name in database.execute(query).fetchall() if album_id not in listed]


def _copied_assets(deployment: Deployment[Target], target: Target,
                   restored: RestoredLibrary) -> list[tuple[str, str, str]]:
    """(asset id, owner id, path relative to the library) of every asset whose original is in the copy."""
    if restored.request.library is None or not restored.copied:
        return []
    database = PsqlConnection(deployment.psql)
    query = ("SELECT id, owner_id, original_path FROM assets" if "assets" in _tables(database) else
             'SELECT id, "ownerId", "originalPath" FROM asset')
    copied = set(restored.copied)
    media = str(target.media_location)
    rows = [(str(a), str(o), media_relative(str(p), media)) for a, o, p in database.execute(query).fetchall()]
    return [row for row in rows if row[2] in copied and row[1] in restored.user_keys]
