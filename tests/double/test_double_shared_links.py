"""Shared links: create for assets or an album, list, open with the key (the link itself, its assets' originals),
and what a key may not do."""

from __future__ import annotations

import os
import uuid

import httpx
from double_harness import Account
from library_helpers import key, new_user, upload


def test_individual_link_opens_with_its_key(api: httpx.Client, admin: Account) -> None:
    owner = new_user(api, admin)
    data = os.urandom(20_000)
    shared, private = upload(api, owner, data), upload(api, owner)
    made = api.post("/api/shared-links", headers=key(owner),
                    json={"type": "INDIVIDUAL", "assetIds": [shared], "description": "for grandma"})
    assert made.status_code == 201, made.text
    link = made.json()
    assert (link["type"], link["description"], link["allowDownload"], link["showMetadata"]) == (
        "INDIVIDUAL", "for grandma", True, True)
    assert [a["id"] for a in link["assets"]] == [shared]
    assert [x["id"] for x in api.get("/api/shared-links", headers=key(owner)).json()] == [link["id"]]

    opened = api.get("/api/shared-links/me", params={"key": link["key"]})
    assert opened.status_code == 200 and opened.json()["id"] == link["id"]
    seen = api.get(f"/api/assets/{shared}", params={"key": link["key"]})
    assert seen.status_code == 200 and "owner" not in seen.json() and seen.json()["id"] == shared
    original = api.get(f"/api/assets/{shared}/original", params={"key": link["key"]})
    assert original.status_code == 200 and original.content == data
    assert api.get(f"/api/assets/{shared}/original", headers={"x-immich-share-key": link["key"]}).content == data
    outside = api.get(f"/api/assets/{private}", params={"key": link["key"]})
    assert (outside.status_code, outside.json()) == (400, {"message": "Not found or no asset.read access"})
    not_shared_route = api.get("/api/users/me", params={"key": link["key"]})
    assert (not_shared_route.status_code, not_shared_route.json()) == (403, {"message": "Forbidden"})
    wrong = api.get("/api/shared-links/me", params={"key": "bm90LWEta2V5"})
    assert (wrong.status_code, wrong.json()) == (401, {"message": "Invalid share key"})
    no_link = api.get("/api/shared-links/me", headers=key(owner))
    assert (no_link.status_code, no_link.json()) == (403, {"message": "Forbidden"})

    assert api.delete(f"/api/shared-links/{link['id']}", headers=key(owner)).status_code == 204
    assert api.get("/api/shared-links/me", params={"key": link["key"]}).status_code == 401


def test_album_link_and_refusals(api: httpx.Client, admin: Account) -> None:
    owner, other = new_user(api, admin), new_user(api, admin)
    photo = upload(api, owner)
    album = api.post("/api/albums", headers=key(owner), json={"albumName": "Party", "assetIds": [photo]}).json()
    made = api.post("/api/shared-links", headers=key(owner),
                    json={"type": "ALBUM", "albumId": album["id"], "allowDownload": False})
    assert made.status_code == 201
    link = made.json()
    assert link["album"]["id"] == album["id"] and link["assets"] == [] and link["allowDownload"] is False
    assert api.get(f"/api/albums/{album['id']}", headers=key(owner)).json()["hasSharedLink"] is True
    opened = api.get("/api/shared-links/me", params={"key": link["key"]}).json()
    assert opened["album"]["albumName"] == "Party"
    assert api.get(f"/api/albums/{album['id']}", params={"key": link["key"]}).status_code == 200
    assert api.get(f"/api/assets/{photo}", params={"key": link["key"]}).status_code == 200
    no_download = api.get(f"/api/assets/{photo}/original", params={"key": link["key"]})
    assert (no_download.status_code, no_download.json()) == (400, {"message": "Not found or no asset.download access"})
    assert api.get(f"/api/shared-links?albumId={album['id']}", headers=key(owner)).json()[0]["id"] == link["id"]

    foreign = api.post("/api/shared-links", headers=key(other), json={"type": "ALBUM", "albumId": album["id"]})
    assert (foreign.status_code, foreign.json()) == (400, {"message": "Not found or no album.share access"})
    foreign_assets = api.post("/api/shared-links", headers=key(other), json={"type": "INDIVIDUAL",
                                                                              "assetIds": [photo]})
    assert foreign_assets.status_code == 400
    assert foreign_assets.json() == {"message": "Not found or no asset.share access"}
    no_album = api.post("/api/shared-links", headers=key(owner), json={"type": "ALBUM"})
    assert (no_album.status_code, no_album.json()) == (400, {"message": "Invalid albumId"})
    no_assets = api.post("/api/shared-links", headers=key(owner), json={"type": "INDIVIDUAL", "assetIds": []})
    assert (no_assets.status_code, no_assets.json()) == (400, {"message": "Invalid assetIds"})
    bad = api.post("/api/shared-links", headers=key(owner), json={"type": "PUBLIC"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["path"] == ["type"]
    assert api.get(f"/api/shared-links/{link['id']}", headers=key(other)).json() == {
        "message": "Shared link not found"}
    assert api.get(f"/api/shared-links/{uuid.uuid4()}", headers=key(owner)).status_code == 400
