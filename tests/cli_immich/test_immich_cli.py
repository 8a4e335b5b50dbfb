"""Immich's own CLI (``@immich/cli`` 3.2.2, installed from npm on first use) against the sandbox: login, server-info,
recursive uploads with albums, duplicates found by checksum and by the server, ``--delete``, logout, keys whose
permissions refuse a command, and checksums per owner; every result checked through the API and on the NAS."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from immich_conformance.immich_cli import ImmichCliUnavailable, ensure_immich_cli
from immich_conformance.sample_media import unique_heic, unique_mp4, unique_png
from immich_conformance.targets.sandbox import Sandbox
from immich_conformance.upload_bodies import PhotoSpec

pytestmark = pytest.mark.slow


@dataclass
class Cli:
    """``immich`` with its auth in a folder of its own and HOME pointed away from the user's."""

    argv: list[str]
    home: Path

    @property
    def config_dir(self) -> Path:
        return self.home / "immich-config"

    def __call__(self, *args: str, ok: bool = True) -> str:
        env = {**os.environ, "HOME": str(self.home), "IMMICH_CONFIG_DIR": str(self.config_dir)}
        for name in ("IMMICH_INSTANCE_URL", "IMMICH_API_KEY"):
            env.pop(name, None)
        done = subprocess.run([*self.argv, *args], env=env, capture_output=True, text=True, timeout=120)
        output = done.stdout + done.stderr
        if not ok:
            assert done.returncode != 0, f"`immich {' '.join(args)}` should have failed:\n{output}"
            return output
        assert done.returncode == 0, f"`immich {' '.join(args)}` exited {done.returncode}:\n{output}"
        assert done.stderr == "", f"`immich {' '.join(args)}` wrote to stderr (Immich's e2e allows none):\n{output}"
        return done.stdout


@pytest.fixture(scope="module")
def cli_argv() -> list[str]:
    try:
        return ensure_immich_cli()
    except ImmichCliUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as s:
        yield s


@pytest.fixture
def cli(cli_argv: list[str], tmp_path: Path) -> Cli:
    home = tmp_path / "home"
    home.mkdir()
    return Cli(cli_argv, home)


@pytest.fixture
def api(sandbox: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{sandbox.lan.url}/api", headers={"x-api-key": sandbox.api_key}, timeout=30) as c:
        yield c


def sha1_base64(content: bytes) -> str:
    return base64.b64encode(hashlib.sha1(content).digest()).decode()


def write_library(root: Path) -> dict[Path, bytes]:
    """JPEG, PNG, HEIC and MP4 files in nested folders, plus files the CLI must leave alone."""
    files = {
        root / "trip" / "beach.jpg": PhotoSpec.unique(6000).content(),
        root / "trip" / "sunset.png": unique_png(),
        root / "trip" / "clips" / "waves.mp4": unique_mp4(),
        root / "phone.heic": unique_heic(),
    }
    (root / "notes.txt").parent.mkdir(parents=True, exist_ok=True)
    (root / "notes.txt").write_text("not media")  # not in the server's media types: never sent
    hidden = root / ".thumbnails" / "hidden.jpg"  # hidden folder: skipped without --include-hidden
    hidden.parent.mkdir(parents=True)
    hidden.write_bytes(PhotoSpec.unique().content())
    for path, content in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return files


def asset_ids(api: httpx.Client, files: dict[Path, bytes]) -> dict[Path, str]:
    """The server's asset id for each file, found by checksum (bulk-upload-check), all of them required."""
    answer = api.post("/assets/bulk-upload-check",
                      json={"assets": [{"id": str(p), "checksum": sha1_base64(c)} for p, c in files.items()]})
    answer.raise_for_status()
    found = {Path(r["id"]): r.get("assetId") for r in answer.json()["results"] if r["action"] == "reject"}
    missing = [str(p) for p in files if not found.get(p)]
    assert not missing, f"no asset on the server has the checksum of {missing}"
    return {p: found[p] for p in files}


def check_stored(sandbox: Sandbox, api: httpx.Client, files: dict[Path, bytes]) -> dict[Path, str]:
    """Each file is an asset with its name, type and checksum, and its original on the NAS byte for byte."""
    ids = asset_ids(api, files)
    for path, asset_id in ids.items():
        asset = api.get(f"/assets/{asset_id}").json()
        assert asset["originalFileName"] == path.name, asset
        assert asset["checksum"] == sha1_base64(files[path]), asset
        assert asset["type"] == ("VIDEO" if path.suffix == ".mp4" else "IMAGE"), asset
        on_nas = sandbox.nas_path(asset["originalPath"])
        assert on_nas.read_bytes() == files[path], f"{on_nas} differs from the uploaded {path}"
    return ids


def statistics(api: httpx.Client) -> dict[str, int]:
    answer = api.get("/assets/statistics")
    answer.raise_for_status()
    return answer.json()


def album_named(api: httpx.Client, name: str) -> dict:
    matching = [a for a in api.get("/albums", params={"name": name}).json() if a["albumName"] == name]
    assert len(matching) == 1, f"{len(matching)} albums named {name!r}, expected 1"
    return matching[0]


def album_names_of(api: httpx.Client, asset_id: str) -> set[str]:
    return {a["albumName"] for a in api.get("/albums", params={"assetId": asset_id}).json()}


def test_login_server_info_upload_albums_duplicates_logout(cli: Cli, sandbox: Sandbox, api: httpx.Client,
                                                         tmp_path: Path) -> None:
    library = tmp_path / "library"
    files = write_library(library)
    before = statistics(api)

    out = cli("login", sandbox.lan.url, sandbox.api_key)
    email = api.get("/users/me").json()["email"]
    assert f"Logged in as {email}" in out, out
    assert sandbox.lan.url in (cli.config_dir / "auth.yml").read_text()

    out = cli("server-info")
    assert "Version: 3.0.3" in out and f"Total: {before['total']}" in out, out
    assert "heic" in out and "mp4" in out, out

    out = cli("upload", "--recursive", "--no-progress", "--album-name", "CLI import", str(library))
    assert "Found 4 new files and 0 duplicates" in out and "Successfully uploaded 4 new assets" in out, out
    ids = check_stored(sandbox, api, files)
    after = statistics(api)
    assert (after["images"] - before["images"], after["videos"] - before["videos"]) == (3, 1), after
    album = album_named(api, "CLI import")
    assert album["assetCount"] == 4, album
    assert all("CLI import" in album_names_of(api, i) for i in ids.values())

    out = cli("server-info")
    assert f"Total: {after['total']}" in out, out

    # Again with an album per folder: every file found a duplicate by its checksum, nothing sent twice.
    out = cli("upload", "--recursive", "--no-progress", "--album", str(library))
    assert "Found 0 new files and 4 duplicates" in out, out
    assert statistics(api) == after
    for path, asset_id in ids.items():
        assert path.parent.name in album_names_of(api, asset_id), f"{path} not in the album {path.parent.name}"

    # Without hashing the CLI sends every file and the server answers each as a duplicate.
    out = cli("upload", "--recursive", "--no-progress", "--skip-hash", str(library))
    assert "Skipping hash check" in out and "Skipped 4 duplicate assets" in out, out
    assert "Successfully uploaded 0 new assets" in out, out
    assert statistics(api) == after
    assert all(p.exists() for p in files), "an upload without --delete removed local files"

    out = cli("logout")
    assert not (cli.config_dir / "auth.yml").exists(), out
    out = cli("server-info", ok=False)
    assert "Please login first" in out, out


def test_delete_removes_local_files_once_uploaded(cli: Cli, sandbox: Sandbox, api: httpx.Client,
                                                  tmp_path: Path) -> None:
    folder = tmp_path / "card"
    files = {folder / "a.jpg": PhotoSpec.unique().content(), folder / "b.png": unique_png()}
    folder.mkdir()
    for path, content in files.items():
        path.write_bytes(content)
    cli("login", sandbox.lan.url, sandbox.api_key)
    out = cli("upload", "--no-progress", "--delete", str(folder))
    assert "Successfully uploaded 2 new assets" in out and "Deleting assets that have been uploaded" in out, out
    assert not [p for p in files if p.exists()], f"--delete left local files: {list(folder.iterdir())}"
    check_stored(sandbox, api, files)


def test_key_without_upload_permission_is_refused_by_the_cli(cli: Cli, sandbox: Sandbox, api: httpx.Client,
                                                             tmp_path: Path) -> None:
    """The CLI reads the key's permissions from GET /api/api-keys/me and stops before sending anything."""
    created = api.post("/api-keys", json={"name": "cli read-only", "permissions": ["user.read", "asset.read"]})
    assert created.status_code == 201, created.text
    photo = tmp_path / "one" / "a.jpg"
    photo.parent.mkdir()
    photo.write_bytes(PhotoSpec.unique().content())
    cli("login", sandbox.lan.url, created.json()["secret"])
    out = cli("upload", "--no-progress", str(photo.parent), ok=False)
    assert 'Missing required permission: "asset.upload"' in out, out
    answer = api.post("/assets/bulk-upload-check",
                      json={"assets": [{"id": "a", "checksum": sha1_base64(photo.read_bytes())}]})
    assert answer.json()["results"][0]["action"] == "accept", "the refused upload reached the server"


def test_key_without_user_read_cannot_log_in(cli: Cli, sandbox: Sandbox, api: httpx.Client) -> None:
    """``immich login`` reads GET /api/users/me first: Immich's 403 stops it and nothing is stored."""
    created = api.post("/api-keys", json={"name": "cli upload-only", "permissions": ["asset.upload"]})
    assert created.status_code == 201, created.text
    out = cli("login", sandbox.lan.url, created.json()["secret"], ok=False)
    assert "Failed to connect to server" in out and "Missing required permission: user.read" in out, out
    assert not (cli.config_dir / "auth.yml").exists()


def second_user_key(api: httpx.Client, sandbox: Sandbox) -> str:
    email, password = f"cli-{os.urandom(4).hex()}@conformance.test", os.urandom(12).hex()
    made = api.post("/admin/users", json={"email": email, "password": password, "name": "CLI second user"})
    assert made.status_code == 201, made.text
    with httpx.Client(base_url=f"{sandbox.lan.url}/api", timeout=30) as anonymous:
        token = anonymous.post("/auth/login", json={"email": email, "password": password}).json()["accessToken"]
        key = anonymous.post("/api-keys", json={"name": "cli", "permissions": ["all"]},
                             headers={"Authorization": f"Bearer {token}"})
    assert key.status_code == 201, key.text
    return key.json()["secret"]


def test_same_files_are_new_to_another_user(cli: Cli, sandbox: Sandbox, api: httpx.Client, tmp_path: Path) -> None:
    """Checksums are per owner in Immich: another user's upload of the same bytes is new to them, and so is their
    album of the same name."""
    folder = tmp_path / "shared-card"
    files = {folder / "same.jpg": PhotoSpec.unique().content()}
    folder.mkdir()
    for path, content in files.items():
        path.write_bytes(content)
    cli("login", sandbox.lan.url, sandbox.api_key)
    cli("upload", "--no-progress", "--album-name", "Same name", str(folder))
    first_id = check_stored(sandbox, api, files)[folder / "same.jpg"]

    other_key = second_user_key(api, sandbox)
    cli("login", sandbox.lan.url, other_key)
    out = cli("upload", "--no-progress", "--album-name", "Same name", str(folder))
    assert "Found 1 new files and 0 duplicates" in out, out
    with httpx.Client(base_url=f"{sandbox.lan.url}/api", headers={"x-api-key": other_key}, timeout=30) as other:
        second_id = check_stored(sandbox, other, files)[folder / "same.jpg"]
        assert album_named(other, "Same name")["assetCount"] == 1
    assert second_id != first_id
    assert album_named(api, "Same name")["assetCount"] == 1
