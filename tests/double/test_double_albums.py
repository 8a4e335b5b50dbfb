"""Albums: create with assets and members, the lists each user sees, adding assets (per-asset results), sharing."""

from __future__ import annotations

import uuid

import httpx
from double_harness import Account
from library_helpers import key, new_user, upload


def _create(api: httpx.Client, owner: Account, **body: object) -> httpx.Response:
    return api.post("/api/albums", headers=key(owner), json={"albumName": "Holiday", **body})


def test_create_an_album_shared_with_another_user(api: httpx.Client, admin: Account) -> None:
    owner, guest, stranger = new_user(api, admin, "Owner"), new_user(api, admin, "Guest"), new_user(api, admin)
    photos = [upload(api, owner) for _ in range(2)]
    created = _create(api, owner, description="by the sea", assetIds=photos,
                      albumUsers=[{"userId": guest.user_id, "role": "viewer"}])
    assert created.status_code == 201, created.text
    album = created.json()
    assert (album["albumName"], album["description"], album["assetCount"]) == ("Holiday", "by the sea", 2)
    assert [(m["user"]["id"], m["role"]) for m in album["albumUsers"]] == [(owner.user_id, "owner"),
                                                                            (guest.user_id, "viewer")]
    assert album["shared"] is True and album["hasSharedLink"] is False and album["albumThumbnailAssetId"] in photos

    seen_by_guest = api.get(f"/api/albums/{album['id']}", headers=key(guest))
    assert seen_by_guest.status_code == 200
    assert [m["user"]["id"] for m in seen_by_guest.json()["albumUsers"]] == [owner.user_id, guest.user_id]
    assert api.get(f"/api/assets/{photos[0]}", headers=key(guest)).status_code == 200  # through the album
    assert [a["id"] for a in api.get("/api/albums", headers=key(guest)).json()] == [album["id"]]
    assert api.get("/api/albums?isOwned=true", headers=key(guest)).json() == []
    assert [a["id"] for a in api.get("/api/albums?isOwned=false", headers=key(guest)).json()] == [album["id"]]
    assert [a["id"] for a in api.get("/api/albums?isShared=true", headers=key(owner)).json()] == [album["id"]]
    assert api.get("/api/albums?isShared=false", headers=key(owner)).json() == []

    refused = api.get(f"/api/albums/{album['id']}", headers=key(stranger))
    assert (refused.status_code, refused.json()) == (400, {"message": "Not found or no album.read access"})
    assert api.get("/api/albums", headers=key(stranger)).json() == []
    hidden = api.get(f"/api/assets/{photos[0]}", headers=key(stranger))
    assert (hidden.status_code, hidden.json()) == (400, {"message": "Not found or no asset.read access"})


def test_create_refusals(api: httpx.Client, admin: Account) -> None:
    owner = new_user(api, admin)
    unknown = _create(api, owner, albumUsers=[{"userId": str(uuid.uuid4()), "role": "editor"}])
    assert (unknown.status_code, unknown.json()) == (400, {"message": "Invalid user"})
    bad = api.post("/api/albums", headers=key(owner), json={"assetIds": ["nope"],
                                                            "albumUsers": [{"userId": owner.user_id, "role": "x"}]})
    assert bad.status_code == 400 and bad.json()["message"] == "Validation failed"
    assert {tuple(e["path"]) for e in bad.json()["errors"]} == {("albumName",), ("assetIds", 0),
                                                                 ("albumUsers", 0, "role")}
    others = upload(api, new_user(api, admin))
    only_mine = _create(api, owner, assetIds=[others]).json()
    assert only_mine["assetCount"] == 0 and only_mine["albumThumbnailAssetId"] is None


def test_add_assets_reports_each_one(api: httpx.Client, admin: Account) -> None:
    owner, editor, viewer = new_user(api, admin), new_user(api, admin), new_user(api, admin)
    first, second = upload(api, owner), upload(api, owner)
    foreign = upload(api, editor)
    album = _create(api, owner, assetIds=[first], albumUsers=[{"userId": editor.user_id, "role": "editor"},
                                                               {"userId": viewer.user_id, "role": "viewer"}]).json()
    missing = str(uuid.uuid4())
    added = api.put(f"/api/albums/{album['id']}/assets", headers=key(owner), json={"ids": [first, second, missing]})
    assert added.status_code == 200
    assert added.json() == [{"id": first, "success": False, "error": "duplicate"}, {"id": second, "success": True},
                            {"id": missing, "success": False, "error": "no_permission"}]
    by_editor = api.put(f"/api/albums/{album['id']}/assets", headers=key(editor), json={"ids": [foreign]})
    assert by_editor.json() == [{"id": foreign, "success": True}]
    by_viewer = api.put(f"/api/albums/{album['id']}/assets", headers=key(viewer), json={"ids": [upload(api, viewer)]})
    assert (by_viewer.status_code, by_viewer.json()) == (400, {"message": "Not found or no albumAsset.create access"})
    assert api.get(f"/api/albums/{album['id']}", headers=key(owner)).json()["assetCount"] == 3
    nowhere = api.put(f"/api/albums/{uuid.uuid4()}/assets", headers=key(owner), json={"ids": [first]})
    assert (nowhere.status_code, nowhere.json()) == (400, {"message": "Album not found"})
    bad = api.put(f"/api/albums/{album['id']}/assets", headers=key(owner), json={"ids": "x"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["path"] == ["ids"]


def test_share_an_album_later(api: httpx.Client, admin: Account) -> None:
    owner, guest = new_user(api, admin), new_user(api, admin)
    album = _create(api, owner).json()
    assert album["shared"] is False
    shared = api.put(f"/api/albums/{album['id']}/users", headers=key(owner),
                     json={"albumUsers": [{"userId": guest.user_id}]})
    assert shared.status_code == 200
    assert [(m["user"]["id"], m["role"]) for m in shared.json()["albumUsers"]] == [(owner.user_id, "owner"),
                                                                                    (guest.user_id, "editor")]
    by_guest = api.put(f"/api/albums/{album['id']}/users", headers=key(guest),
                       json={"albumUsers": [{"userId": admin.user_id, "role": "viewer"}]})
    assert (by_guest.status_code, by_guest.json()) == (400, {"message": "Not found or no album.share access"})
    owner_again = api.put(f"/api/albums/{album['id']}/users", headers=key(owner),
                          json={"albumUsers": [{"userId": admin.user_id, "role": "owner"}]})
    assert (owner_again.status_code, owner_again.json()) == (400, {"message": "Cannot add another owner"})
    empty = api.put(f"/api/albums/{album['id']}/users", headers=key(owner), json={"albumUsers": []})
    assert empty.status_code == 400 and empty.json()["errors"][0]["code"] == "too_small"
    assert api.delete(f"/api/albums/{album['id']}", headers=key(guest)).status_code == 400
    assert api.delete(f"/api/albums/{album['id']}", headers=key(owner)).status_code == 204
    assert api.get(f"/api/albums/{album['id']}", headers=key(owner)).status_code == 400
