"""Each library route asks an API key for the permission Immich v3.0.3 declares for it (``x-immich-permission`` in
the OpenAPI document; ``all`` where a route declares none)."""

from __future__ import annotations

import uuid

import httpx
import pytest
from double_harness import Account, DoubleServer

from immich_conformance.double.spec_check import OpenApiSpec

ID = str(uuid.uuid4())
ROUTES = [
    ("POST", "/api/admin/users", "/admin/users"),
    ("GET", "/api/admin/users", "/admin/users"),
    ("GET", f"/api/admin/users/{ID}", "/admin/users/{id}"),
    ("DELETE", f"/api/admin/users/{ID}", "/admin/users/{id}"),
    ("GET", "/api/users", "/users"),
    ("GET", "/api/api-keys", "/api-keys"),
    ("DELETE", f"/api/api-keys/{ID}", "/api-keys/{id}"),
    ("POST", "/api/auth/logout", "/auth/logout"),
    ("GET", "/api/server/about", "/server/about"),
    ("GET", "/api/assets/statistics", "/assets/statistics"),
    ("GET", f"/api/assets/{ID}", "/assets/{id}"),
    ("PUT", f"/api/assets/{ID}", "/assets/{id}"),
    ("PUT", "/api/assets", "/assets"),
    ("GET", f"/api/assets/{ID}/original", "/assets/{id}/original"),
    ("POST", "/api/trash/restore", "/trash/restore"),
    ("POST", "/api/trash/empty", "/trash/empty"),
    ("GET", "/api/albums", "/albums"),
    ("POST", "/api/albums", "/albums"),
    ("GET", f"/api/albums/{ID}", "/albums/{id}"),
    ("DELETE", f"/api/albums/{ID}", "/albums/{id}"),
    ("PUT", f"/api/albums/{ID}/assets", "/albums/{id}/assets"),
    ("PUT", f"/api/albums/{ID}/users", "/albums/{id}/users"),
    ("GET", "/api/tags", "/tags"),
    ("POST", "/api/tags", "/tags"),
    ("DELETE", f"/api/tags/{ID}", "/tags/{id}"),
    ("PUT", "/api/tags/assets", "/tags/assets"),
    ("PUT", f"/api/tags/{ID}/assets", "/tags/{id}/assets"),
    ("GET", "/api/shared-links", "/shared-links"),
    ("POST", "/api/shared-links", "/shared-links"),
    ("GET", f"/api/shared-links/{ID}", "/shared-links/{id}"),
    ("DELETE", f"/api/shared-links/{ID}", "/shared-links/{id}"),
]


@pytest.fixture(scope="module")
def narrow_key(double: DoubleServer, admin: Account) -> str:
    created = httpx.post(f"{double.url}/api/api-keys", headers={"x-api-key": admin.api_key},
                         json={"name": "narrow", "permissions": ["activity.read"]}, timeout=10)
    assert created.status_code == 201, created.text
    return str(created.json()["secret"])


@pytest.mark.parametrize(("method", "path", "template"), ROUTES, ids=[f"{m} {t}" for m, _, t in ROUTES])
def test_route_asks_for_immichs_permission(api: httpx.Client, spec: OpenApiSpec, narrow_key: str, method: str,
                                           path: str, template: str) -> None:
    declared = spec.document["paths"][template][method.lower()].get("x-immich-permission") or "all"
    response = api.request(method, path, headers={"x-api-key": narrow_key}, json={})
    assert (response.status_code, response.json()) == (403, {"message": f"Missing required permission: {declared}"})


def test_routes_without_a_permission(api: httpx.Client, narrow_key: str) -> None:
    assert api.get("/api/api-keys/me", headers={"x-api-key": narrow_key}).json()["permissions"] == ["activity.read"]
    assert api.get("/api/server/media-types").status_code == 200
    mine = api.get("/api/shared-links/me", headers={"x-api-key": narrow_key})
    assert (mine.status_code, mine.json()) == (403, {"message": "Forbidden"})
