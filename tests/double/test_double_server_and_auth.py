"""Unauthenticated server endpoints, sign-up and login, API keys, and which credentials are accepted or refused.

Responses through ``api`` are validated against the v3.0.3 OpenAPI document (status and body) by the client itself.
"""

from __future__ import annotations

import re

import httpx
from double_harness import ADMIN_EMAIL, ADMIN_PASSWORD, Account, DoubleServer, upload_form

from immich_conformance.versions import IMMICH_VERSION


def test_server_endpoints(api: httpx.Client) -> None:
    assert api.get("/api/server/ping").json() == {"res": "pong"}
    major, minor, patch = (int(x) for x in IMMICH_VERSION.lstrip("v").split("."))
    assert api.get("/api/server/version").json() == {"major": major, "minor": minor, "patch": patch,
                                                     "prerelease": None}
    features = api.get("/api/server/features")
    assert features.status_code == 200 and features.json()["passwordLogin"] is True
    config = api.get("/api/server/config")
    assert config.status_code == 200
    well_known = httpx.get(str(api.base_url.join("/.well-known/immich")), timeout=5)
    assert well_known.json() == {"api": {"endpoint": "/api"}}


def test_config_reports_initialisation(api: httpx.Client, admin: Account) -> None:
    assert api.get("/api/server/config").json()["isInitialized"] is True


def test_correlation_id_on_every_response(double: DoubleServer) -> None:
    seen = set()
    for path in ("/api/server/ping", "/api/users/me", "/api/nowhere"):
        value = httpx.get(f"{double.url}{path}", timeout=5).headers["x-correlation-id"]
        assert re.fullmatch(r"[0-9A-Za-z]{8}", value), value
        seen.add(value)
    assert len(seen) == 3
    echoed = httpx.get(f"{double.url}/api/server/ping", headers={"x-correlation-id": "mine-123"}, timeout=5)
    assert echoed.headers["x-correlation-id"] == "mine-123"


def test_unknown_route_names_method_and_path(double: DoubleServer) -> None:
    got = httpx.get(f"{double.url}/api/not-a-route?x=1", timeout=5)
    assert (got.status_code, got.json()) == (404, {"message": "Cannot GET /api/not-a-route?x=1"})
    posted = httpx.post(f"{double.url}/api/server/ping", timeout=5)
    assert (posted.status_code, posted.json()) == (404, {"message": "Cannot POST /api/server/ping"})


def test_second_admin_sign_up_is_refused(api: httpx.Client, admin: Account) -> None:
    again = api.post("/api/auth/admin-sign-up", json={"email": "x@example.com", "name": "X", "password": "pw"})
    assert (again.status_code, again.json()) == (400, {"message": "The server already has an admin"})


def test_sign_up_validation_shape(api: httpx.Client) -> None:
    bad = api.post("/api/auth/admin-sign-up", json={"email": "not-an-email", "password": 5})
    body = bad.json()
    assert bad.status_code == 400 and body["message"] == "Validation failed"
    paths = {tuple(e["path"]) for e in body["errors"]}
    assert paths == {("email",), ("password",), ("name",)}
    assert all({"code", "path", "message"} <= set(e) for e in body["errors"])


def test_login_sets_cookies_and_gives_an_opaque_token(api: httpx.Client, admin: Account) -> None:
    login = api.post("/api/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert login.status_code == 201
    token = login.json()["accessToken"]
    assert token.count(".") != 2  # not a JWT
    cookies = login.headers.get_list("set-cookie")
    by_name = {c.split("=", 1)[0]: c for c in cookies}
    assert by_name["immich_access_token"].startswith(f"immich_access_token={token};")
    assert "HttpOnly" in by_name["immich_access_token"] and "SameSite=Lax" in by_name["immich_access_token"]
    assert by_name["immich_auth_type"].startswith("immich_auth_type=password;")
    assert by_name["immich_is_authenticated"].startswith("immich_is_authenticated=true;")
    assert "HttpOnly" not in by_name["immich_is_authenticated"]
    wrong = api.post("/api/auth/login", json={"email": ADMIN_EMAIL, "password": "nope"})
    assert (wrong.status_code, wrong.json()) == (401, {"message": "Incorrect email or password"})


def test_api_key_creation_and_validation(api: httpx.Client, admin: Account) -> None:
    auth = {"x-api-key": admin.api_key}
    created = api.post("/api/api-keys", json={"name": "read-only", "permissions": ["asset.read"]}, headers=auth)
    assert created.status_code == 201
    assert created.json()["apiKey"]["permissions"] == ["asset.read"] and created.json()["secret"]
    empty = api.post("/api/api-keys", json={"name": "x", "permissions": []}, headers=auth)
    assert empty.status_code == 400 and empty.json()["errors"][0]["path"] == ["permissions"]
    bogus = api.post("/api/api-keys", json={"permissions": ["everything"]}, headers=auth)
    assert bogus.status_code == 400 and bogus.json()["errors"][0]["path"] == ["permissions", 0]


def test_every_accepted_credential(api: httpx.Client, admin: Account) -> None:
    ways = [
        {"headers": {"x-api-key": admin.api_key}},
        {"params": {"apiKey": admin.api_key}},
        {"headers": {"Authorization": f"Bearer {admin.access_token}"}},
        {"headers": {"Cookie": f"other=1; immich_access_token={admin.access_token}"}},
    ]
    for way in ways:
        me = api.get("/api/users/me", **way)
        assert me.status_code == 200, way
        assert me.json()["id"] == admin.user_id and me.json()["email"] == ADMIN_EMAIL


def test_refused_credentials(api: httpx.Client, admin: Account) -> None:
    cases = [
        ({}, "Authentication required"),
        ({"x-api-key": "not-a-key"}, "Invalid API key"),
        ({"Authorization": f"Bearer {admin.api_key}"}, "Invalid user token"),
        ({"Cookie": "immich_access_token=forged"}, "Invalid user token"),
    ]
    for headers, message in cases:
        got = api.get("/api/users/me", headers=headers)
        assert (got.status_code, got.json()) == (401, {"message": message}), headers
        assert "www-authenticate" not in got.headers


def test_api_key_permissions_are_enforced(api: httpx.Client, admin: Account) -> None:
    narrow = api.post("/api/api-keys", json={"permissions": ["asset.read"]}, headers={"x-api-key": admin.api_key})
    key = narrow.json()["secret"]
    refused = api.post("/api/assets", headers={"x-api-key": key}, **upload_form(b"narrow key bytes"))
    assert (refused.status_code, refused.json()) == (403, {"message": "Missing required permission: asset.upload"})
    wider = api.post("/api/api-keys", json={"permissions": ["all"]}, headers={"x-api-key": key})
    assert (wider.status_code, wider.json()) == (403, {"message": "Missing required permission: apiKey.create"})
