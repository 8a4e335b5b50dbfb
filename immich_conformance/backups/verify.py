"""``verify-backup``: restore an Immich database backup into a throwaway release and say whether it is worth keeping.

The release is the processes sandbox (the Immich API double on a PostgreSQL of its own), or the containers runtime:
the real images for a real Immich backup (``--runtime containers``), the double's builds for the double's
(``--images local``). Real Immich enters and leaves maintenance inside its container (its main process starts the
workers again when they exit with the restart code), so the container needs no restart policy.

The backup is checked first (its gzip stream whole, a pg_dump header, its Postgres major not newer than the
release's), then restored through Immich's own maintenance flow; with ``--library`` a copy of the library (the user's
folder is only read) is put in the release's NAS folder first and Immich's integrity checks run on the result: a
missing original or a checksum mismatch fails the verification, naming the files.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from ..trust_store import system_trust
from .backup_file import BackupFile, BackupProblem, check_postgres, inspect_backup
from .integrity import IntegrityFindings, integrity_summary
from .library import copy_library
from .restore import RestoreFailed, grant_api_key, restore_backup
from .sql_access import Connection, PsqlConnection, connect

if TYPE_CHECKING:
    from ..targets.base import Target
    from ..targets.spec import TargetSpec

SHOWN_PATHS = 10
TIMEOUT = httpx.Timeout(30.0, read=120.0)


class VerifyFailed(RuntimeError):
    """The backup does not restore, or restores with damage; the message is one line."""


@dataclass
class VerifyReport:
    backup: BackupFile
    release: str = ""
    users: list[str] = field(default_factory=list)
    assets: int = 0
    albums: int = 0
    library: Path | None = None
    copied: int = 0
    findings: IntegrityFindings | None = None
    seconds: float = 0.0
    failure: str | None = None

    def render(self) -> str:
        b = self.backup
        lines = [
            f"backup:     {b.path.name} ({_size(b.size)})",
            f"written by: Immich {b.immich_version or 'unknown (not in the file name)'}, PostgreSQL "
            f"{b.postgres_version or 'unknown'}" + (f" (pg_dump {b.pg_dump_version})" if b.pg_dump_version else ""),
            f"restored into: {self.release}" if self.release else "",
            f"users:      {len(self.users)}" + (f" ({', '.join(self.users)})" if self.users else ""),
            f"assets:     {self.assets}",
            f"albums:     {self.albums}",
        ]
        if self.library is None:
            lines.append("library:    none given (--library DIR): the integrity checks were not run")
        else:
            lines.append(f"library:    {self.copied} files copied from {self.library} (whole; only read)")
        if self.findings is not None:
            counts = self.findings.counts
            lines.append(f"integrity:  {counts.get('missing_file', 0)} missing, {counts.get('checksum_mismatch', 0)} "
                         f"checksum mismatches, {counts.get('untracked_file', 0)} untracked files")
            for kind, label in (("missing_file", "missing"), ("checksum_mismatch", "checksum mismatch"),
                                ("untracked_file", "untracked")):
                for path in self.findings.paths.get(kind, [])[:SHOWN_PATHS]:
                    lines.append(f"  {label}: {path}")
        lines.append(f"verdict:    {self.failure}" if self.failure else
                     f"verdict:    this backup restores ({self.seconds:.0f}s)")
        return "\n".join(line for line in lines if line)


def _size(count: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} bytes"


def _counts(database: str | Connection) -> tuple[int, int]:
    """Assets not in the trash and albums, from the release's database (the double's tables or Immich's)."""
    with connect(database) as conn:
        tables = {r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'").fetchall()}
        asset, album = ("assets", "albums") if "assets" in tables else ("asset", "album")
        deleted = "deleted_at" if asset == "assets" else '"deletedAt"'
        assets = conn.execute(f"SELECT count(*) FROM {asset} WHERE {deleted} IS NULL").fetchone()
        albums = conn.execute(f"SELECT count(*) FROM {album} WHERE {deleted} IS NULL").fetchone()
    return int(assets[0]) if assets else 0, int(albums[0]) if albums else 0


def _release_postgres_major(database: str | Connection) -> int:
    with connect(database) as conn:
        row = conn.execute("SHOW server_version_num").fetchone()
    return int(row[0]) // 10000 if row else 0


def release_for(info: BackupFile, spec: TargetSpec) -> None:
    """Refuse, before anything starts, a release that cannot restore this backup: the double's builds restore only
    the double's backups, real Immich only its own."""
    doubles = spec.runtime != "containers" or spec.images == "local"
    if info.real_immich and doubles:
        raise BackupProblem(f"the backup {info.path.name} is of a real Immich server (its own schema and extensions), "
                            f"and {spec.option} runs the Immich API double, which restores only backups it wrote: "
                            "verify it with the real images (--runtime containers), or restore it into a spare "
                            "Immich (Administration > Maintenance > restore)")
    if not info.real_immich and not doubles:
        raise BackupProblem(f"the backup {info.path.name} was written by the Immich API double: it restores only into "
                            "the double's builds (the default sandbox, or --runtime containers --images local)")


def verify_backup(backup: Path, library: Path | None = None, *, spec: TargetSpec | None = None,
                  progress: Callable[[str], None] | None = None) -> VerifyReport:
    """Restore ``backup`` into a throwaway release (``spec``: the processes sandbox by default, or the containers
    runtime); the report (``failure`` set when it did not restore cleanly). BackupProblem before any release starts
    when the file itself cannot restore, or cannot restore into that release."""
    from ..targets.spec import TargetSpec, open_target

    spec = spec or TargetSpec()
    where = "containers" if spec.runtime == "containers" else "sandbox"
    say = progress or (lambda message: None)
    info = inspect_backup(backup)
    release_for(info, spec)
    if library is not None and not library.is_dir():
        raise BackupProblem(f"the library folder {library} does not exist or is not a folder: give the folder Immich "
                            "uses as its media location (the one holding upload/ and library/)")
    report = VerifyReport(backup=info, library=library)
    started = time.monotonic()
    target = open_target(spec, lambda message: say(f"{where}: {message}"))
    with contextlib.closing(target):
        database = _database(target)
        major = _release_postgres_major(database)
        with httpx.Client(base_url=target.lan.url, headers={"x-api-key": target.api_key}, timeout=TIMEOUT,
                          verify=system_trust()) as client:
            version = client.get("/api/server/version").json()
            release = f"v{version['major']}.{version['minor']}.{version['patch']}"
            report.release = (f"a throwaway {where} release (Immich {'' if info.real_immich else 'API double '}"
                              f"{release}, PostgreSQL {major})")
            check_postgres(info, major)
            if library is not None:
                say(f"copying the library {library} into the {where}")
                report.copied = copy_library(library, target.nas_root)
            say(f"restoring {backup.name} through Immich's maintenance flow")
            try:
                restore_backup(client, backup, progress=say)
            except RestoreFailed as exc:
                report.failure = f"this backup does not restore: {exc}"
                if "no admin exists" in str(exc):
                    report.failure += " (no Immich admin in it: is it a dump of another application?)"
                return report
            client.headers["x-api-key"] = grant_api_key(database)
            users = client.get("/api/admin/users")
            users.raise_for_status()
            report.users = sorted(u["email"] for u in users.json())
            report.assets, report.albums = _counts(database)
            if library is not None:
                say("running Immich's integrity checks")
                found = integrity_summary(client).relative_to(str(target.media_location))
                report.findings = found
                if problems := found.problems():
                    named = "; ".join(f"{kind.replace('_', ' ')}: {', '.join(paths[:SHOWN_PATHS])}"
                                      for kind, paths in problems.items())
                    report.failure = (f"the backup restores but its library is damaged ({named}): restore those "
                                      "files from another copy of the library")
    report.seconds = time.monotonic() - started
    return report


def _database(target: Target) -> str | Connection:
    """The release's database: the processes sandbox's by its DSN, a container's through psql in it."""
    from ..targets.containers import ContainersSandbox
    from ..targets.sandbox import Sandbox

    if isinstance(target, Sandbox):
        return target.database_dsn
    if isinstance(target, ContainersSandbox):
        return PsqlConnection(target.psql)
    raise BackupProblem(f"{target.name} gives no way into its database")
