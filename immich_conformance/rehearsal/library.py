"""A whole library seeded before an upgrade and read back after it.

Before: a second user made by the admin (with an API key of their own), photos (JPEG, PNG) and a video (MP4) for each
user, favourites and descriptions, a trashed asset, albums owned by each user (one shared with the other user),
tags, a shared link per user, and a rehearsal API key for the admin. After: every item read back through the API as it
was (ids, members and roles, flags, counts, descriptions, tags, links that still open with their key, both API keys,
the second user's password) and every original byte for byte on the NAS. ``SeededLibrary`` is plain dataclasses, so
it can be written to the reports folder as JSON; ``delete_library`` removes everything it made. Reading it back
after the upgrade: ``rehearsal.library_checks``.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

from ..conditions import files_gone
from ..procs import wait_until
from ..sample_media import unique_mp4, unique_png
from ..targets.base import Target
from ..trust_store import system_trust
from ..upload_bodies import PhotoSpec

TIMEOUT = httpx.Timeout(30.0, read=120.0)
MARK = "rehearsal"  # every name, email and description the library seeds carries it
DELETE_TIMEOUT = 30.0


class SeedingFailed(AssertionError):
    """The server refused a step of seeding; the message names the request and its answer."""


@dataclass
class SeededUser:
    user_id: str
    email: str
    password: str
    name: str
    api_key: str
    api_key_id: str


@dataclass
class SeededAsset:
    asset_id: str
    owner_id: str
    file_name: str
    asset_type: str
    sha1: str  # hex
    size: int
    nas_path: str
    is_favorite: bool = False
    description: str = ""
    is_trashed: bool = False
    tags: list[str] = field(default_factory=list)  # tag values


@dataclass
class SeededAlbum:
    album_id: str
    owner_id: str
    name: str
    description: str
    asset_ids: list[str]
    members: dict[str, str]  # user id -> role, the owner included


@dataclass
class SeededTag:
    tag_id: str
    owner_id: str
    value: str
    asset_ids: list[str]


@dataclass
class SeededLink:
    link_id: str
    owner_id: str
    key: str
    link_type: str
    album_id: str | None
    asset_ids: list[str]


@dataclass
class SeededLibrary:
    admin_id: str
    admin_api_key: str
    admin_api_key_id: str
    second: SeededUser
    assets: list[SeededAsset] = field(default_factory=list)
    albums: list[SeededAlbum] = field(default_factory=list)
    tags: list[SeededTag] = field(default_factory=list)
    links: list[SeededLink] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "seeded-library.json"
        path.write_text(self.to_json())
        return path

    def key_of(self, user_id: str) -> str:
        return self.second.api_key if user_id == self.second.user_id else self.admin_api_key

    def summary(self) -> str:
        return (f"{len(self.assets)} assets, {len(self.albums)} albums, {len(self.tags)} tags, "
                f"{len(self.links)} shared links, a second user {self.second.email}")


# --- talking to the server -------------------------------------------------------------------------------------------
@contextmanager
def lan_client(target: Target, api_key: str | None = None) -> Iterator[httpx.Client]:
    headers = dict(target.lan.headers)
    if api_key:
        headers["x-api-key"] = api_key
    with httpx.Client(base_url=target.lan.url, headers=headers, timeout=TIMEOUT, follow_redirects=False,
                      verify=system_trust()) as client:
        yield client


def _expect(response: httpx.Response, status: int, what: str) -> Any:
    if response.status_code != status:
        raise SeedingFailed(f"seeding {what}: {response.request.method} {response.request.url.path} answered "
                            f"{response.status_code} (expected {status}): {response.text[:300]}")
    return response.json() if response.content else None


def _upload(client: httpx.Client, data: bytes, file_name: str, mime: str) -> str:
    now = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    response = client.post("/api/assets", files={"assetData": (file_name, data, mime)},
                           data={"fileCreatedAt": now, "fileModifiedAt": now})
    return str(_expect(response, 201, f"the asset {file_name}")["id"])


def sha1_of_file(path: Path) -> bytes:
    digest = hashlib.sha1()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.digest()


# --- seeding ---------------------------------------------------------------------------------------------------------
def seed_library(target: Target) -> SeededLibrary:
    """Make the library on a running target through its LAN endpoint; SeedingFailed names a refused step."""
    tag = secrets.token_hex(4)
    with lan_client(target, target.api_key) as admin:
        admin_id = str(_expect(admin.get("/api/users/me"), 200, "the admin's identity")["id"])
        admin_key = _expect(admin.post("/api/api-keys", json={"name": f"{MARK}-{tag}", "permissions": ["all"]}),
                            201, "an API key for the admin")
        try:
            second = _make_second_user(target, admin, tag)
        except BaseException:
            admin.delete(f"/api/api-keys/{admin_key['apiKey']['id']}")
            raise
    library = SeededLibrary(admin_id, admin_key["secret"], admin_key["apiKey"]["id"], second)
    try:
        _seed_contents(target, library, tag)
    except BaseException:
        delete_library(target, library)
        raise
    return library


def _make_second_user(target: Target, admin: httpx.Client, tag: str) -> SeededUser:
    email, password, name = f"{MARK}-{tag}@conformance.test", secrets.token_urlsafe(18), f"Rehearsal user {tag}"
    made = _expect(admin.post("/api/admin/users", json={"email": email, "password": password, "name": name}),
                   201, "a second user")
    with lan_client(target) as anonymous:
        token = _expect(anonymous.post("/api/auth/login", json={"email": email, "password": password}),
                        201, "the second user's login")["accessToken"]
        key = _expect(anonymous.post("/api/api-keys", json={"name": f"{MARK}-{tag}", "permissions": ["all"]},
                                     headers={"Authorization": f"Bearer {token}"}), 201, "the second user's API key")
    return SeededUser(str(made["id"]), email, password, name, key["secret"], key["apiKey"]["id"])


def _seed_assets(target: Target, client: httpx.Client, owner_id: str, tag: str) -> dict[str, SeededAsset]:
    files = {
        "jpeg": (PhotoSpec.unique(64 * 1024).content(), f"{MARK}-{tag}-photo.jpg", "image/jpeg", "IMAGE"),
        "png": (unique_png(), f"{MARK}-{tag}-drawing.png", "image/png", "IMAGE"),
        "mp4": (unique_mp4(), f"{MARK}-{tag}-clip.mp4", "video/mp4", "VIDEO"),
        "trash": (PhotoSpec.unique(8 * 1024).content(), f"{MARK}-{tag}-discarded.jpg", "image/jpeg", "IMAGE"),
    }
    seeded = {}
    for role, (data, name, mime, kind) in files.items():
        asset_id = _upload(client, data, name, mime)
        info = _expect(client.get(f"/api/assets/{asset_id}"), 200, f"reading back {name}")
        seeded[role] = SeededAsset(asset_id, owner_id, name, kind, hashlib.sha1(data).hexdigest(), len(data),
                                   str(target.nas_path(info["originalPath"])))
    return seeded


def _seed_contents(target: Target, library: SeededLibrary, tag: str) -> None:
    second = library.second
    for owner_id, key, other_id in ((library.admin_id, library.admin_api_key, second.user_id),
                                    (second.user_id, second.api_key, library.admin_id)):
        with lan_client(target, key) as client:
            assets = _seed_assets(target, client, owner_id, tag)
            library.assets += assets.values()
            who = "admin" if owner_id == library.admin_id else "second user"
            # Favourite and describe the photo, trash one asset.
            photo = assets["jpeg"]
            photo.is_favorite, photo.description = True, f"{MARK}: the {who}'s favourite ({tag})"
            _expect(client.put(f"/api/assets/{photo.asset_id}",
                               json={"isFavorite": True, "description": photo.description}), 200, "a favourite")
            assets["png"].description = f"{MARK}: described by the {who}"
            _expect(client.put(f"/api/assets/{assets['png'].asset_id}",
                               json={"description": assets["png"].description}), 200, "a description")
            assets["trash"].is_trashed = True
            _expect(client.request("DELETE", "/api/assets", json={"ids": [assets["trash"].asset_id]}), 204,
                    "a trashed asset")
            # An album of the photos and the video; the admin's is shared with the second user as editor.
            in_album = [assets[k].asset_id for k in ("jpeg", "png", "mp4")]
            members = [{"userId": other_id, "role": "editor"}] if owner_id == library.admin_id else []
            name = f"{MARK} {who} album {tag}"
            album = _expect(client.post("/api/albums", json={"albumName": name, "description": f"{MARK} of the {who}",
                                                             "assetIds": in_album, "albumUsers": members}),
                            201, "an album")
            library.albums.append(SeededAlbum(
                album["id"], owner_id, name, f"{MARK} of the {who}", sorted(in_album),
                {owner_id: "owner", **{m["userId"]: m["role"] for m in members}}))
            # A tag on the photo and the video.
            value = f"{MARK}-{tag}-{'admin' if owner_id == library.admin_id else 'second'}"
            made_tag = _expect(client.post("/api/tags", json={"name": value}), 201, "a tag")
            tagged = [assets["jpeg"].asset_id, assets["mp4"].asset_id]
            _expect(client.put("/api/tags/assets", json={"tagIds": [made_tag["id"]], "assetIds": tagged}), 200,
                    "tagging assets")
            for k in ("jpeg", "mp4"):
                assets[k].tags.append(value)
            library.tags.append(SeededTag(made_tag["id"], owner_id, value, sorted(tagged)))
            # A shared link: the admin shares the PNG on its own, the second user their album.
            if owner_id == library.admin_id:
                body: dict[str, Any] = {"type": "INDIVIDUAL", "assetIds": [assets["png"].asset_id],
                                        "description": f"{MARK} link {tag}"}
            else:
                body = {"type": "ALBUM", "albumId": album["id"], "description": f"{MARK} link {tag}"}
            link = _expect(client.post("/api/shared-links", json=body), 201, "a shared link")
            library.links.append(SeededLink(link["id"], owner_id, link["key"], body["type"], body.get("albumId"),
                                            list(body.get("assetIds", []))))


# --- clean-up --------------------------------------------------------------------------------------------------------
def delete_library(target: Target, seeded: SeededLibrary) -> list[str]:
    """Delete everything seeded (links, tags, albums, assets by force, the admin's rehearsal key, the second user by
    force) and wait until their files are gone from the NAS; what could not be deleted."""
    failures: list[str] = []

    def attempt(client: httpx.Client, method: str, path: str, ok: tuple[int, ...], **kwargs: Any) -> None:
        response = client.request(method, path, **kwargs)
        if response.status_code not in ok:
            failures.append(f"{method} {path} answered {response.status_code}: {response.text[:160]}")

    with lan_client(target, target.api_key) as admin:
        for link in seeded.links:
            with lan_client(target, seeded.key_of(link.owner_id)) as client:
                attempt(client, "DELETE", f"/api/shared-links/{link.link_id}", (204,))
        for tag in seeded.tags:
            with lan_client(target, seeded.key_of(tag.owner_id)) as client:
                attempt(client, "DELETE", f"/api/tags/{tag.tag_id}", (204,))
        for album in seeded.albums:
            with lan_client(target, seeded.key_of(album.owner_id)) as client:
                attempt(client, "DELETE", f"/api/albums/{album.album_id}", (204,))
        admins = [a.asset_id for a in seeded.assets if a.owner_id == seeded.admin_id]
        if admins:
            attempt(admin, "DELETE", "/api/assets", (204,), json={"ids": admins, "force": True})
        seconds = [a.asset_id for a in seeded.assets if a.owner_id == seeded.second.user_id]
        if seconds:
            with lan_client(target, seeded.second.api_key) as client:
                attempt(client, "DELETE", "/api/assets", (204,), json={"ids": seconds, "force": True})
        attempt(admin, "DELETE", f"/api/api-keys/{seeded.admin_api_key_id}", (204,))
        attempt(admin, "DELETE", f"/api/admin/users/{seeded.second.user_id}", (200,), json={"force": True})
    if not failures:
        files = [Path(a.nas_path) for a in seeded.assets]
        try:
            wait_until(files_gone(files), timeout=DELETE_TIMEOUT, interval=0.5,
                       what="the seeded library's files to leave the NAS")
        except Exception as exc:  # noqa: BLE001 - reported, not raised: clean-up goes on
            failures.append(f"{sum(p.exists() for p in files)} seeded files are still on the NAS: {exc}")
    return failures
