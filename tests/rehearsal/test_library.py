"""The rehearsal's library on the processes sandbox: seeded, read back intact, broken on purpose behind the API's back
(each break named by ``verify_library``), then deleted to the last file and user. Each test seeds a library of its
own: the tests hold in any order."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from immich_conformance.rehearsal.deployments import Deployment
from immich_conformance.rehearsal.library import SeededLibrary, delete_library, seed_library
from immich_conformance.rehearsal.library_checks import verify_library
from immich_conformance.rehearsal.rehearsal import Rehearsal
from immich_conformance.rehearsal.releases import Release, resolve
from immich_conformance.targets.sandbox import Sandbox
from immich_conformance.versions import IMMICH_VERSION


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as target:
        yield target


@pytest.fixture
def library(sandbox: Sandbox) -> Iterator[SeededLibrary]:
    """A library of the test's own, whatever an earlier test broke or deleted; deleted afterwards (what a test
    deleted itself is refused again, unheard: the sandbox goes with the module)."""
    seeded = seed_library(sandbox)
    yield seeded
    delete_library(sandbox, seeded)


def _sql(sandbox: Sandbox, statement: str, params: tuple[object, ...]) -> None:
    with psycopg.connect(sandbox.database_dsn, autocommit=True) as conn:
        conn.execute(statement, params)  # type: ignore[arg-type]


def test_seeded_library_reads_back_intact(sandbox: Sandbox, library: SeededLibrary, tmp_path: Path) -> None:
    assert verify_library(sandbox, library) == []
    kinds = {(a.file_name.rsplit(".", 1)[1], a.asset_type) for a in library.assets}
    assert kinds == {("jpg", "IMAGE"), ("png", "IMAGE"), ("mp4", "VIDEO")}
    assert any(a.is_trashed for a in library.assets) and any(a.is_favorite for a in library.assets)
    shared = [a for a in library.albums if len(a.members) > 1]
    assert [set(a.members.values()) for a in shared] == [{"owner", "editor"}]
    assert {link.link_type for link in library.links} == {"ALBUM", "INDIVIDUAL"}
    written = json.loads(library.write(tmp_path).read_text())
    assert written["second"]["user_id"] == library.second.user_id and len(written["assets"]) == len(library.assets)


def test_a_removed_album_membership_is_named(sandbox: Sandbox, library: SeededLibrary) -> None:
    album = next(a for a in library.albums if len(a.members) > 1)
    _sql(sandbox, "DELETE FROM album_users WHERE album_id = %s AND user_id = %s", (album.album_id,
                                                                                   library.second.user_id))
    try:
        problems = verify_library(sandbox, library)
        assert any(album.album_id in p and "members" in p for p in problems), problems
        assert any(album.album_id in p and "no longer sees it" in p for p in problems), problems
    finally:
        _sql(sandbox, "INSERT INTO album_users (album_id, user_id, role) VALUES (%s, %s, 'editor')",
             (album.album_id, library.second.user_id))
    assert verify_library(sandbox, library) == []


def test_changed_description_favourite_and_trash_are_named(sandbox: Sandbox, library: SeededLibrary) -> None:
    described = next(a for a in library.assets if a.description and not a.is_favorite)
    favourite = next(a for a in library.assets if a.is_favorite)
    with httpx.Client(base_url=sandbox.lan.url, headers={"x-api-key": library.key_of(described.owner_id)}) as api:
        assert api.put(f"/api/assets/{described.asset_id}", json={"description": "changed"}).status_code == 200
    _sql(sandbox, "UPDATE assets SET is_favorite = false WHERE id = %s", (favourite.asset_id,))
    trashed = next(a for a in library.assets if a.is_trashed)
    _sql(sandbox, "UPDATE assets SET deleted_at = NULL WHERE id = %s", (trashed.asset_id,))
    problems = verify_library(sandbox, library)
    assert any(described.asset_id in p and "'changed'" in p for p in problems), problems
    assert any(favourite.asset_id in p and "isFavorite" in p for p in problems), problems
    assert any(trashed.asset_id in p and "isTrashed is False, was True" in p for p in problems), problems
    _sql(sandbox, "UPDATE assets SET deleted_at = now() WHERE id = %s", (trashed.asset_id,))
    with httpx.Client(base_url=sandbox.lan.url, headers={"x-api-key": library.key_of(described.owner_id)}) as api:
        api.put(f"/api/assets/{described.asset_id}", json={"description": described.description})
    _sql(sandbox, "UPDATE assets SET is_favorite = true WHERE id = %s", (favourite.asset_id,))
    assert verify_library(sandbox, library) == []


def _one(sandbox: Sandbox, query: str, params: tuple[object, ...]) -> object:
    with psycopg.connect(sandbox.database_dsn, autocommit=True) as conn:
        row = conn.execute(query, params).fetchone()  # type: ignore[arg-type]
    assert row is not None
    return row[0]


def test_lost_keys_links_tags_and_files_are_named(sandbox: Sandbox, library: SeededLibrary) -> None:
    link, tag = library.links[0], library.tags[0]
    photo = next(a for a in library.assets if not a.is_trashed)
    key_hash = _one(sandbox, "SELECT key_hash FROM api_keys WHERE id = %s", (library.second.api_key_id,))
    link_key = _one(sandbox, "SELECT key FROM shared_links WHERE id = %s", (link.link_id,))
    original = Path(photo.nas_path).read_bytes()
    _sql(sandbox, "UPDATE api_keys SET key_hash = %s WHERE id = %s", (os.urandom(32), library.second.api_key_id))
    _sql(sandbox, "UPDATE shared_links SET key = %s WHERE id = %s", (os.urandom(50), link.link_id))
    _sql(sandbox, "UPDATE tags SET value = value || '-renamed' WHERE id = %s", (tag.tag_id,))
    Path(photo.nas_path).write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    try:
        problems = "\n".join(verify_library(sandbox, library))
        assert "the second user's API key no longer works" in problems, problems
        assert f"shared link {link.link_id} ({link.link_type}) no longer opens with its key" in problems, problems
        assert f"tag {tag.tag_id} is now '{tag.value}-renamed'" in problems, problems
        assert f"{photo.nas_path} differs from the bytes uploaded" in problems, problems
    finally:
        _sql(sandbox, "UPDATE api_keys SET key_hash = %s WHERE id = %s", (key_hash, library.second.api_key_id))
        _sql(sandbox, "UPDATE shared_links SET key = %s WHERE id = %s", (link_key, link.link_id))
        _sql(sandbox, "UPDATE tags SET value = %s WHERE id = %s", (tag.value, tag.tag_id))
        Path(photo.nas_path).write_bytes(original)
    assert verify_library(sandbox, library) == []


def test_delete_library_leaves_nothing(sandbox: Sandbox, library: SeededLibrary) -> None:
    assert delete_library(sandbox, library) == []
    with httpx.Client(base_url=sandbox.lan.url, headers={"x-api-key": sandbox.api_key}) as admin:
        users = {u["id"] for u in admin.get("/api/admin/users").json()}
        assert library.second.user_id not in users
        assert admin.get("/api/albums").json() == []
    assert not any(Path(a.nas_path).exists() for a in library.assets)


class _SandboxInPlace(Deployment[Sandbox]):
    """The running sandbox as a rehearsal's deployment, for the phases that only talk to a running server."""

    def __init__(self, target: Sandbox) -> None:
        self.target = target

    def deploy(self, release: Release, progress: Callable[[str], None]) -> Sandbox:
        raise NotImplementedError

    def upgrade(self, release: Release) -> None:
        raise NotImplementedError

    def running_images(self) -> dict[str, str]:
        return {}

    def server_log_since_upgrade(self) -> str:
        return ""

    def scenario_options(self) -> tuple[list[str], dict[str, str]]:
        return [], {}

    @property
    def builds_doubles(self) -> bool:
        return True


def test_the_rehearsal_seeds_verifies_and_deletes_the_library(sandbox: Sandbox, tmp_path: Path) -> None:
    release = resolve(IMMICH_VERSION)
    rehearsal = Rehearsal(release, release, _SandboxInPlace(sandbox), tmp_path, progress=lambda line: None)
    rehearsal.seed()
    library = rehearsal.library
    assert library is not None and (tmp_path / "seeded-library.json").is_file()
    rehearsal.verify()
    _sql(sandbox, "UPDATE albums SET album_name = 'renamed' WHERE id = %s", (library.albums[0].album_id,))
    with pytest.raises(AssertionError, match=f"album {library.albums[0].album_id} .*albumName is 'renamed'"):
        rehearsal.verify()
    rehearsal.delete_seeded()
    assert rehearsal.library is None and rehearsal.seeded == []
    assert not any(Path(a.nas_path).exists() for a in library.assets)
