"""The seeded library read back after an upgrade: ``verify_library`` reads every seeded item back through the API
(users and their keys and password, assets with their files byte for byte on the NAS, albums with members and roles,
tags, shared links) and names what is missing or changed."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import httpx

from ..targets.base import Target
from .library import (
    SeededAlbum,
    SeededAsset,
    SeededLibrary,
    SeededLink,
    SeededTag,
    lan_client,
    sha1_of_file,
)


# --- verifying -------------------------------------------------------------------------------------------------------
def verify_library(target: Target, seeded: SeededLibrary) -> list[str]:
    """What is missing or changed in the seeded library ([] when all of it came through)."""
    problems: list[str] = []
    problems += _check_users(target, seeded)
    for asset in seeded.assets:
        with lan_client(target, seeded.key_of(asset.owner_id)) as client:
            problems += _check_asset(target, client, asset)
    for album in seeded.albums:
        problems += _check_album(target, seeded, album)
    for tag in seeded.tags:
        with lan_client(target, seeded.key_of(tag.owner_id)) as client:
            problems += _check_tag(client, tag)
    for link in seeded.links:
        problems += _check_link(target, seeded, link)
    return problems


def _check_users(target: Target, seeded: SeededLibrary) -> list[str]:
    second, problems = seeded.second, []
    with lan_client(target, target.api_key) as admin:
        listed = admin.get("/api/admin/users")
        users = {u["id"]: u for u in listed.json()} if listed.status_code == 200 else {}
        found = users.get(second.user_id)
        if found is None:
            problems.append(f"the second user {second.email} ({second.user_id}) is not in GET /api/admin/users "
                            f"(answered {listed.status_code})")
        elif (found["email"], found["name"]) != (second.email, second.name):
            problems.append(f"the second user {second.user_id} is now {found['email']!r}/{found['name']!r}, "
                            f"was {second.email!r}/{second.name!r}")
    for who, key, key_id, user_id in (("the second user's", second.api_key, second.api_key_id, second.user_id),
                                      ("the admin's rehearsal", seeded.admin_api_key, seeded.admin_api_key_id,
                                       seeded.admin_id)):
        with lan_client(target, key) as client:
            me = client.get("/api/users/me")
            if me.status_code != 200 or me.json().get("id") != user_id:
                problems.append(f"{who} API key no longer works: GET /api/users/me answered {me.status_code} "
                                f"{me.text[:120]}")
                continue
            current = client.get("/api/api-keys/me")
            if current.status_code != 200 or current.json().get("id") != key_id:
                problems.append(f"{who} API key {key_id}: GET /api/api-keys/me answered {current.status_code} "
                                f"{current.text[:120]}")
    with lan_client(target) as anonymous:
        login = anonymous.post("/api/auth/login", json={"email": second.email, "password": second.password})
        if login.status_code != 201:
            problems.append(f"the second user {second.email} can no longer log in: {login.status_code} "
                            f"{login.text[:120]}")
    return problems


def _check_asset(target: Target, client: httpx.Client, asset: SeededAsset) -> list[str]:
    where = f"asset {asset.asset_id} ({asset.file_name})"
    response = client.get(f"/api/assets/{asset.asset_id}")
    if response.status_code != 200:
        return [f"{where} is gone: GET /api/assets/{asset.asset_id} answered {response.status_code}"]
    info, problems = response.json(), []
    expected = {
        "checksum": base64.b64encode(bytes.fromhex(asset.sha1)).decode(),
        "type": asset.asset_type,
        "ownerId": asset.owner_id,
        "originalFileName": asset.file_name,
        "isFavorite": asset.is_favorite,
        "isTrashed": asset.is_trashed,
    }
    for name, value in expected.items():
        if info.get(name) != value:
            problems.append(f"{where}: {name} is {info.get(name)!r}, was {value!r}")
    description = (info.get("exifInfo") or {}).get("description") or ""
    if description != asset.description:
        problems.append(f"{where}: its description is {description!r}, was {asset.description!r}")
    tags = sorted(t["value"] for t in info.get("tags") or [])
    if tags != sorted(asset.tags):
        problems.append(f"{where}: its tags are {tags}, were {sorted(asset.tags)}")
    path = Path(asset.nas_path)
    if str(target.nas_path(info["originalPath"])) != asset.nas_path:
        problems.append(f"{where}: Immich now stores it at {info['originalPath']}, not where it was ({path})")
    if not path.is_file():
        problems.append(f"{where}: its file {path} is not on the NAS")
    elif sha1_of_file(path).hex() != asset.sha1:
        problems.append(f"{where}: {path} differs from the bytes uploaded")
    return problems


def _check_album(target: Target, seeded: SeededLibrary, album: SeededAlbum) -> list[str]:
    where = f"album {album.album_id} ({album.name!r})"
    with lan_client(target, seeded.key_of(album.owner_id)) as owner:
        response = owner.get(f"/api/albums/{album.album_id}")
        if response.status_code != 200:
            return [f"{where} is gone: GET /api/albums/{album.album_id} answered {response.status_code}"]
        body, problems = response.json(), []
        for name, value in (("albumName", album.name), ("description", album.description),
                            ("assetCount", len(album.asset_ids))):
            if body.get(name) != value:
                problems.append(f"{where}: {name} is {body.get(name)!r}, was {value!r}")
        members = {m["user"]["id"]: m["role"] for m in body.get("albumUsers", [])}
        if members != album.members:
            problems.append(f"{where}: its members are {members}, were {album.members}")
        for asset_id in album.asset_ids:
            holding = owner.get("/api/albums", params={"assetId": asset_id})
            if album.album_id not in {a["id"] for a in (holding.json() if holding.status_code == 200 else [])}:
                problems.append(f"{where}: asset {asset_id} is no longer in it")
    for user_id, role in album.members.items():
        if role == "owner":
            continue
        with lan_client(target, seeded.key_of(user_id)) as member:
            shared = member.get("/api/albums", params={"isOwned": "false"})
            if album.album_id not in {a["id"] for a in (shared.json() if shared.status_code == 200 else [])}:
                problems.append(f"{where}: user {user_id} ({role}) no longer sees it among albums shared with them")
    return problems


def _check_tag(client: httpx.Client, tag: SeededTag) -> list[str]:
    listed = client.get("/api/tags")
    tags = {t["id"]: t for t in listed.json()} if listed.status_code == 200 else {}
    if tag.tag_id not in tags:
        return [f"tag {tag.tag_id} ({tag.value!r}) is gone from GET /api/tags (answered {listed.status_code})"]
    if tags[tag.tag_id]["value"] != tag.value:
        return [f"tag {tag.tag_id} is now {tags[tag.tag_id]['value']!r}, was {tag.value!r}"]
    return []


def _check_link(target: Target, seeded: SeededLibrary, link: SeededLink) -> list[str]:
    where = f"shared link {link.link_id} ({link.link_type})"
    with lan_client(target, seeded.key_of(link.owner_id)) as owner:
        listed = owner.get("/api/shared-links")
        if link.link_id not in {x["id"] for x in (listed.json() if listed.status_code == 200 else [])}:
            return [f"{where} is gone from its owner's GET /api/shared-links (answered {listed.status_code})"]
    problems = []
    with lan_client(target) as visitor:
        opened = visitor.get("/api/shared-links/me", params={"key": link.key})
        if opened.status_code != 200 or opened.json().get("id") != link.link_id:
            return [f"{where} no longer opens with its key: GET /api/shared-links/me answered {opened.status_code} "
                    f"{opened.text[:120]}"]
        body = opened.json()
        if link.album_id and (body.get("album") or {}).get("id") != link.album_id:
            problems.append(f"{where}: it no longer shows album {link.album_id}")
        shown = sorted(a["id"] for a in body.get("assets", []))
        if not link.album_id and shown != sorted(link.asset_ids):
            problems.append(f"{where}: it shows assets {shown}, showed {sorted(link.asset_ids)}")
        by_id = {a.asset_id: a for a in seeded.assets}
        for asset_id in link.asset_ids:
            original = visitor.get(f"/api/assets/{asset_id}/original", params={"key": link.key})
            if original.status_code != 200 or hashlib.sha1(original.content).hexdigest() != by_id[asset_id].sha1:
                problems.append(f"{where}: the original of asset {asset_id} does not download with the key "
                                f"(answered {original.status_code})")
    return problems
