"""Users made by the admin, the user lists, API keys per user (``/api/api-keys/me``), logout, and deleting a user."""

from __future__ import annotations

import random
from pathlib import Path

import httpx
from double_harness import Account, DoubleServer, wait_for
from library_helpers import PASSWORD, key, new_user, upload


def test_admin_creates_a_user_who_can_log_in(api: httpx.Client, admin: Account) -> None:
    other = new_user(api, admin, name="Bea")
    listed = api.get("/api/admin/users", headers=key(admin))
    assert listed.status_code == 200, listed.text
    mine = [u for u in listed.json() if u["id"] == other.user_id]
    assert mine and mine[0]["email"] == other.email and mine[0]["isAdmin"] is False
    assert mine[0]["shouldChangePassword"] is True and mine[0]["status"] == "active"
    me = api.get("/api/users/me", headers=key(other)).json()
    assert (me["id"], me["name"]) == (other.user_id, "Bea")
    users = api.get("/api/users", headers=key(other))
    assert {admin.user_id, other.user_id} <= {u["id"] for u in users.json()}
    one = api.get(f"/api/admin/users/{other.user_id}", headers=key(admin))
    assert one.status_code == 200 and one.json()["email"] == other.email


def test_user_creation_refusals(api: httpx.Client, admin: Account) -> None:
    other = new_user(api, admin)
    again = api.post("/api/admin/users", headers=key(admin),
                     json={"email": other.email.upper(), "password": PASSWORD, "name": "Twin"})
    assert (again.status_code, again.json()) == (400, {"message": "User exists"})
    by_user = api.post("/api/admin/users", headers=key(other), json={"email": "x@example.com", "password": "p",
                                                                      "name": "X"})
    assert (by_user.status_code, by_user.json()) == (403, {"message": "Forbidden"})
    assert api.get("/api/admin/users", headers=key(other)).status_code == 403
    bad = api.post("/api/admin/users", headers=key(admin), json={"email": "not-an-email", "name": 3})
    assert bad.status_code == 400 and bad.json()["message"] == "Validation failed"
    assert {tuple(e["path"]) for e in bad.json()["errors"]} == {("email",), ("name",), ("password",)}
    assert api.get("/api/admin/users/not-a-uuid", headers=key(admin)).status_code == 400


def test_api_keys_per_user_and_the_current_key(api: httpx.Client, admin: Account) -> None:
    other = new_user(api, admin)
    mine = api.get("/api/api-keys/me", headers=key(other))
    assert mine.status_code == 200 and mine.json()["permissions"] == ["all"] and mine.json()["name"] == "mine"
    listed = api.get("/api/api-keys", headers=key(other)).json()
    assert [k["id"] for k in listed] == [mine.json()["id"]]
    assert mine.json()["id"] not in {k["id"] for k in api.get("/api/api-keys", headers=key(admin)).json()}
    by_session = api.get("/api/api-keys/me", headers={"Authorization": f"Bearer {other.access_token}"})
    assert (by_session.status_code, by_session.json()) == (403, {"message": "Not authenticated with an API Key"})
    narrow = api.post("/api/api-keys", headers=key(other), json={"name": "read", "permissions": ["asset.read"]})
    narrow_key = {"x-api-key": narrow.json()["secret"]}
    assert api.get("/api/api-keys/me", headers=narrow_key).json()["permissions"] == ["asset.read"]
    refused = api.get("/api/api-keys", headers=narrow_key)
    assert (refused.status_code, refused.json()) == (403, {"message": "Missing required permission: apiKey.read"})
    assert api.delete(f"/api/api-keys/{narrow.json()['apiKey']['id']}", headers=key(other)).status_code == 204
    assert api.get("/api/api-keys/me", headers=narrow_key).status_code == 401


def test_logout_ends_the_session_and_clears_the_cookies(api: httpx.Client, admin: Account) -> None:
    other = new_user(api, admin)
    login = api.post("/api/auth/login", json={"email": other.email, "password": PASSWORD})
    token = login.json()["accessToken"]
    api.cookies.clear()
    bearer = {"Authorization": f"Bearer {token}"}
    out = api.post("/api/auth/logout", headers=bearer)
    assert out.status_code == 200 and out.json() == {"successful": True, "redirectUri": "/auth/login?autoLaunch=0"}
    cleared = out.headers.get_list("set-cookie")
    for name in ("immich_access_token", "immich_auth_type", "immich_is_authenticated"):
        assert any(c.startswith(f"{name}=") and "1970" in c for c in cleared), cleared
    assert api.get("/api/users/me", headers=bearer).json() == {"message": "Invalid user token"}
    assert api.get("/api/users/me", headers=key(other)).status_code == 200  # the API key stays valid
    assert api.post("/api/auth/logout").status_code == 401


def test_force_deleting_a_user_removes_them_and_their_files(api: httpx.Client, admin: Account,
                                                            double: DoubleServer) -> None:
    other = new_user(api, admin)
    asset_id = upload(api, other)
    path = api.get(f"/api/assets/{asset_id}", headers=key(other)).json()["originalPath"]
    self_delete = api.request("DELETE", f"/api/admin/users/{admin.user_id}", headers=key(admin), json={})
    assert (self_delete.status_code, self_delete.json()) == (403, {"message": "Cannot delete your own account"})
    by_user = api.request("DELETE", f"/api/admin/users/{admin.user_id}", headers=key(other), json={})
    assert by_user.status_code == 403
    gone = api.request("DELETE", f"/api/admin/users/{other.user_id}", headers=key(admin), json={"force": True})
    assert gone.status_code == 200 and gone.json()["status"] == "removing" and gone.json()["deletedAt"]
    assert api.get("/api/users/me", headers=key(other)).json() == {"message": "Invalid API key"}
    login = api.post("/api/auth/login", json={"email": other.email, "password": PASSWORD})
    assert login.status_code == 401
    wait_for(lambda: not Path(path).exists(), "the deleted user's original to go")
    again = api.request("DELETE", f"/api/admin/users/{other.user_id}", headers=key(admin), json={})
    assert (again.status_code, again.json()) == (400, {"message": "User not found"})


def test_server_about_needs_a_caller_and_media_types_do_not(api: httpx.Client, admin: Account) -> None:
    assert api.get("/api/server/about").json() == {"message": "Authentication required"}
    about = api.get("/api/server/about", headers=key(admin))
    assert about.status_code == 200 and about.json()["version"].startswith("v")
    types = api.get("/api/server/media-types").json()
    assert ".jpg" in types["image"] and ".mp4" in types["video"] and types["sidecar"] == [".xmp"]


def test_the_admin_is_asked_to_change_the_password_and_colours_come_from_the_address(api: httpx.Client,
                                                                                      admin: Account) -> None:
    me = api.get("/api/users/me", headers=key(admin)).json()
    assert me["shouldChangePassword"] is True, "Immich's sign-up leaves its table's default"
    assert me["avatarColor"] == "gray"  # admin@example.com, as Immich's emailToAvatarColor gives it
    letters = list("abcdefghij")
    random.shuffle(letters)  # any order of the same letters has the same colour: a fresh address each run
    email = f"{''.join(letters)}@example.com"
    made = api.post("/api/admin/users", headers=key(admin), json={"email": email, "password": PASSWORD, "name": "C"})
    assert made.status_code == 201, made.text
    assert made.json()["avatarColor"] == "red", email
    listed = {u["id"]: u for u in api.get("/api/users", headers=key(admin)).json()}
    assert listed[made.json()["id"]]["avatarColor"] == "red"
