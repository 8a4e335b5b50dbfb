"""The OpenAPI response checker the suite reuses: it accepts what the document allows and catches what it does not."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest
from double_harness import DoubleServer

from immich_conformance.double.spec_check import OpenApiSpec, SpecError, SpecViolation, load_spec

ASSET_ID = "0b6d1b1e-8d36-4c1a-9d3b-6a8e6f1f2c3d"
USER: dict[str, Any] = {
    "avatarColor": "primary", "createdAt": "2024-01-01T00:00:00.000Z", "deletedAt": None, "email": "a@example.com",
    "id": "3fa85f64-5717-4562-b3fc-2c963f66afa6", "isAdmin": True, "license": None, "name": "A", "oauthId": "",
    "profileChangedAt": "2024-01-01T00:00:00.000Z", "profileImagePath": "", "quotaSizeInBytes": None,
    "quotaUsageInBytes": 0, "shouldChangePassword": False, "status": "active", "storageLabel": "admin",
    "updatedAt": "2024-01-01T00:00:00.000Z",
}


def test_a_valid_body_passes(spec: OpenApiSpec) -> None:
    assert spec.problems("GET", "/api/users/me", 200, USER) == []
    assert spec.problems("POST", "/api/assets", 201, {"id": ASSET_ID, "status": "created"}) == []
    assert spec.problems("DELETE", "/api/assets", 204, None, has_body=False) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda b: b.pop("email"), "'email' is a required property"),
        (lambda b: b.update(isAdmin="yes"), "is not of type 'boolean'"),
        (lambda b: b.update(avatarColor="mauve"), "is not one of"),
        (lambda b: b.update(id="not-a-uuid"), "is not a 'uuid'"),
        (lambda b: b.update(createdAt="yesterday"), "is not a 'date-time'"),
        (lambda b: b.update(quotaUsageInBytes=-1), "less than the minimum"),
        (lambda b: b.update(license={"licenseKey": "x"}), "not valid under any of the given schemas"),
        (lambda b: b.update(surprise=1), "Additional properties are not allowed"),
    ],
)
def test_a_wrong_body_is_caught(spec: OpenApiSpec, change: Any, expected: str) -> None:
    body = copy.deepcopy(USER)
    change(body)
    with pytest.raises(SpecViolation, match=expected):
        spec.check("GET", "/api/users/me", 200, body)


def test_lenient_mode_allows_extra_properties_but_not_missing_ones() -> None:
    lenient = load_spec()
    assert lenient.problems("GET", "/api/users/me", 200, {**USER, "surprise": 1}) == []
    assert lenient.problems("GET", "/api/users/me", 200, {k: v for k, v in USER.items() if k != "name"})


def test_statuses_and_error_bodies(spec: OpenApiSpec) -> None:
    # 200 and 201 are both documented for uploads; 202 is not.
    assert spec.problems("POST", "/api/assets", 200, {"id": ASSET_ID, "status": "duplicate"}) == []
    assert "not documented" in spec.problems("POST", "/api/assets", 202, {"id": ASSET_ID, "status": "created"})[0]
    assert spec.problems("POST", "/api/assets", 201, {"id": ASSET_ID, "status": "uploaded"})
    # Error statuses: Immich v3's shape only.
    assert spec.problems("GET", f"/api/assets/{ASSET_ID}", 400, {"message": "Not found or no asset.read access"}) == []
    issue = {"code": "invalid_format", "path": ["id"], "message": "x"}
    validation = {"message": "Validation failed", "errors": [issue]}
    assert spec.problems("GET", "/api/assets/x", 400, validation) == []
    assert spec.problems("GET", "/api/users/me", 401, {"message": "x", "statusCode": 401, "error": "Unauthorized"})
    assert spec.problems("GET", "/api/users/me", 401, {"error": "Unauthorized"})
    assert spec.problems("GET", "/api/users/me", 401, None, has_body=False)
    # 204 must be empty.
    assert spec.problems("DELETE", "/api/assets", 204, {"ok": True})


def test_paths_resolve_to_the_right_operation(spec: OpenApiSpec) -> None:
    assert spec.operation("GET", f"/api/assets/{ASSET_ID}?key=1").operation_id == "getAssetInfo"
    assert spec.operation("GET", "/api/assets/statistics").operation_id == "getAssetStatistics"
    assert spec.operation("POST", "/assets/bulk-upload-check").operation_id == "checkBulkUpload"
    with pytest.raises(SpecError):
        spec.operation("GET", "/api/no-such-thing")
    with pytest.raises(SpecError):
        spec.operation("PATCH", "/api/server/ping")


def test_a_live_response_with_a_field_removed_fails(double: DoubleServer, spec: OpenApiSpec) -> None:
    response = httpx.get(f"{double.url}/api/server/version", timeout=5)
    spec.check_response(response)
    broken = response.json()
    del broken["prerelease"]
    with pytest.raises(SpecViolation, match="'prerelease' is a required property"):
        spec.check("GET", "/api/server/version", 200, broken)
