"""Tags: create (nested values), list, tag assets (in bulk and per tag), tags on the asset, refusals."""

from __future__ import annotations

import uuid

import httpx
from double_harness import Account
from library_helpers import key, new_user, upload


def test_create_and_list_tags(api: httpx.Client, admin: Account) -> None:
    owner, other = new_user(api, admin), new_user(api, admin)
    parent = api.post("/api/tags", headers=key(owner), json={"name": "Trips", "color": "ff0000"})
    assert parent.status_code == 201 and parent.json()["color"] == "#ff0000"
    child = api.post("/api/tags", headers=key(owner), json={"name": "Rome", "parentId": parent.json()["id"]})
    assert child.status_code == 201
    assert (child.json()["name"], child.json()["value"], child.json()["parentId"]) == ("Rome", "Trips/Rome",
                                                                                      parent.json()["id"])
    assert [t["value"] for t in api.get("/api/tags", headers=key(owner)).json()] == ["Trips", "Trips/Rome"]
    assert api.get("/api/tags", headers=key(other)).json() == []
    again = api.post("/api/tags", headers=key(owner), json={"name": "Trips"})
    assert (again.status_code, again.json()) == (400, {"message": "A tag with that name already exists"})
    foreign_parent = api.post("/api/tags", headers=key(other), json={"name": "X", "parentId": parent.json()["id"]})
    assert (foreign_parent.status_code, foreign_parent.json()) == (400, {"message": "Not found or no tag.read access"})
    bad = api.post("/api/tags", headers=key(owner), json={"color": "red"})
    assert bad.status_code == 400 and {tuple(e["path"]) for e in bad.json()["errors"]} == {("name",), ("color",)}


def test_tag_assets_and_see_them_on_the_asset(api: httpx.Client, admin: Account) -> None:
    owner, other = new_user(api, admin), new_user(api, admin)
    first, second = upload(api, owner), upload(api, owner)
    foreign = upload(api, other)
    tag = api.post("/api/tags", headers=key(owner), json={"name": "Best"}).json()
    family = api.post("/api/tags", headers=key(owner), json={"name": "Family"}).json()
    per_tag = api.put(f"/api/tags/{tag['id']}/assets", headers=key(owner), json={"ids": [first, foreign]})
    assert per_tag.json() == [{"id": first, "success": True}, {"id": foreign, "success": False,
                                                                "error": "no_permission"}]
    again = api.put(f"/api/tags/{tag['id']}/assets", headers=key(owner), json={"ids": [first]})
    assert again.json() == [{"id": first, "success": False, "error": "duplicate"}]
    bulk = api.put("/api/tags/assets", headers=key(owner),
                   json={"tagIds": [tag["id"], family["id"]], "assetIds": [first, second, foreign]})
    assert bulk.status_code == 200 and bulk.json() == {"count": 3}
    tags = api.get(f"/api/assets/{first}", headers=key(owner)).json()["tags"]
    assert [t["value"] for t in tags] == ["Best", "Family"]
    refused = api.put(f"/api/tags/{tag['id']}/assets", headers=key(other), json={"ids": [foreign]})
    assert (refused.status_code, refused.json()) == (400, {"message": "Not found or no tag.asset access"})
    unknown = api.put("/api/tags/assets", headers=key(owner), json={"tagIds": [str(uuid.uuid4())],
                                                                    "assetIds": [first]})
    assert (unknown.status_code, unknown.json()) == (200, {"count": 0})
    others = api.put("/api/tags/assets", headers=key(other), json={"tagIds": [tag["id"]], "assetIds": [foreign]})
    assert others.json() == {"count": 0}
    assert api.delete(f"/api/tags/{tag['id']}", headers=key(other)).status_code == 400
    assert api.delete(f"/api/tags/{tag['id']}", headers=key(owner)).status_code == 204
    assert [t["value"] for t in api.get(f"/api/assets/{first}", headers=key(owner)).json()["tags"]] == ["Family"]
