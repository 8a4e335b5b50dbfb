"""Editing assets (favourite, description, visibility, date), statistics, downloading originals, video, the trash."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import httpx
from double_harness import Account, wait_for
from library_helpers import key, new_user, upload


def test_edit_one_asset_and_read_it_back(api: httpx.Client, admin: Account) -> None:
    owner, other = new_user(api, admin), new_user(api, admin)
    asset_id = upload(api, owner)
    edited = api.put(f"/api/assets/{asset_id}", headers=key(owner),
                     json={"isFavorite": True, "description": "first light", "visibility": "archive",
                           "dateTimeOriginal": "2023-07-01T06:30:00+02:00", "rating": 4})
    assert edited.status_code == 200, edited.text
    info = api.get(f"/api/assets/{asset_id}", headers=key(owner)).json()
    assert (info["isFavorite"], info["isArchived"], info["visibility"]) == (True, True, "archive")
    assert info["exifInfo"]["description"] == "first light" and info["exifInfo"]["rating"] == 4
    assert info["exifInfo"]["dateTimeOriginal"] == "2023-07-01T04:30:00.000Z"
    assert edited.json()["exifInfo"] == info["exifInfo"]
    refused = api.put(f"/api/assets/{asset_id}", headers=key(other), json={"isFavorite": False})
    assert (refused.status_code, refused.json()) == (400, {"message": "Not found or no asset.update access"})
    bad = api.put(f"/api/assets/{asset_id}", headers=key(owner), json={"isFavorite": "yes", "visibility": "public",
                                                                       "latitude": 91})
    assert bad.status_code == 400 and bad.json()["message"] == "Validation failed"
    assert {tuple(e["path"]) for e in bad.json()["errors"]} == {("isFavorite",), ("visibility",), ("latitude",)}
    assert api.get(f"/api/assets/{asset_id}", headers=key(owner)).json()["isFavorite"] is True


def test_bulk_edit(api: httpx.Client, admin: Account) -> None:
    owner, other = new_user(api, admin), new_user(api, admin)
    ids = [upload(api, owner) for _ in range(2)]
    done = api.put("/api/assets", headers=key(owner), json={"ids": ids, "isFavorite": True, "description": "both"})
    assert done.status_code == 204
    for asset_id in ids:
        info = api.get(f"/api/assets/{asset_id}", headers=key(owner)).json()
        assert info["isFavorite"] is True and info["exifInfo"]["description"] == "both"
    mixed = api.put("/api/assets", headers=key(owner), json={"ids": [ids[0], upload(api, other)], "isFavorite": False})
    assert (mixed.status_code, mixed.json()) == (400, {"message": "Not found or no asset.update access"})
    assert api.get(f"/api/assets/{ids[0]}", headers=key(owner)).json()["isFavorite"] is True


def test_statistics_is_not_an_asset_id(api: httpx.Client, admin: Account) -> None:
    owner = new_user(api, admin)
    photo, video = upload(api, owner), upload(api, owner, name="clip.mp4")
    api.put(f"/api/assets/{photo}", headers=key(owner), json={"isFavorite": True})
    stats = api.get("/api/assets/statistics", headers=key(owner))
    assert stats.status_code == 200 and stats.json() == {"images": 1, "videos": 1, "total": 2}
    assert api.get("/api/assets/statistics?isFavorite=true", headers=key(owner)).json()["total"] == 1
    assert api.get(f"/api/assets/{video}", headers=key(owner)).json()["type"] == "VIDEO"
    api.request("DELETE", "/api/assets", headers=key(owner), json={"ids": [video]})
    assert api.get("/api/assets/statistics?isTrashed=true", headers=key(owner)).json()["videos"] == 1
    assert api.get("/api/assets/statistics?isFavorite=maybe", headers=key(owner)).status_code == 400


def test_download_the_original(api: httpx.Client, admin: Account) -> None:
    owner, other = new_user(api, admin), new_user(api, admin)
    data = os.urandom(70_000)
    asset_id = upload(api, owner, data, name="Beach.JPG")
    got = api.get(f"/api/assets/{asset_id}/original", headers=key(owner))
    assert got.status_code == 200 and got.content == data
    assert got.headers["content-type"] == "image/jpeg"
    refused = api.get(f"/api/assets/{asset_id}/original", headers=key(other))
    assert (refused.status_code, refused.json()) == (400, {"message": "Not found or no asset.download access"})
    assert api.get(f"/api/assets/{uuid.uuid4()}/original", headers=key(owner)).status_code == 400


def test_trash_restore_and_empty(api: httpx.Client, admin: Account) -> None:
    owner = new_user(api, admin)
    kept, dropped = upload(api, owner), upload(api, owner)
    path = api.get(f"/api/assets/{dropped}", headers=key(owner)).json()["originalPath"]
    assert api.request("DELETE", "/api/assets", headers=key(owner), json={"ids": [kept, dropped]}).status_code == 204
    assert api.get(f"/api/assets/{kept}", headers=key(owner)).json()["isTrashed"] is True
    assert api.post("/api/trash/restore", headers=key(owner)).json() == {"count": 2}
    assert api.get(f"/api/assets/{kept}", headers=key(owner)).json()["isTrashed"] is False
    api.request("DELETE", "/api/assets", headers=key(owner), json={"ids": [dropped]})
    assert api.post("/api/trash/empty", headers=key(owner)).json() == {"count": 1}
    assert api.get(f"/api/assets/{dropped}", headers=key(owner)).status_code == 400
    wait_for(lambda: not Path(path).exists(), "the emptied asset's file to go")
