"""Uploads (storage layout, SHA-1, duplicates, the checksum header, refused and cut bodies) and the asset endpoints."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import socket
import uuid
from pathlib import Path

import httpx
import pytest
from double_harness import Account, DoubleServer, add_user, files_under, read_http_reply, upload_form, wait_for

from immich_conformance.double.spec_check import OpenApiSpec
from immich_conformance.procs import LOOPBACK

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def _upload(api: httpx.Client, account: Account, data: bytes, **kwargs: str) -> httpx.Response:
    return api.post("/api/assets", headers={"x-api-key": account.api_key}, **upload_form(data, **kwargs))


def _info(api: httpx.Client, account: Account, asset_id: str) -> httpx.Response:
    return api.get(f"/api/assets/{asset_id}", headers={"x-api-key": account.api_key})


def test_upload_stores_the_original_where_immich_does(api: httpx.Client, admin: Account, double: DoubleServer) -> None:
    data = os.urandom(300_000)
    created = _upload(api, admin, data, name="Holiday.JPG")
    assert created.status_code == 201 and created.json()["status"] == "created"
    asset_id = created.json()["id"]

    info = _info(api, admin, asset_id).json()
    path = Path(info["originalPath"])
    assert path.is_absolute()
    pattern = rf"{re.escape(str(double.media))}/upload/{admin.user_id}/([0-9a-f]{{2}})/([0-9a-f]{{2}})/({UUID})\.JPG"
    match = re.fullmatch(pattern, str(path))
    assert match, path
    xx, yy, file_uuid = match.groups()
    assert file_uuid != asset_id and file_uuid[:2] == xx and file_uuid[2:4] == yy
    on_disk = path.read_bytes()
    assert on_disk == data
    assert info["checksum"] == base64.b64encode(hashlib.sha1(on_disk).digest()).decode()
    assert info["originalFileName"] == "Holiday.JPG" and info["type"] == "IMAGE" and info["isTrashed"] is False
    assert info["fileCreatedAt"] == "2024-05-01T10:00:00.000Z"
    assert info["fileModifiedAt"] == "2024-05-01T10:00:00.000Z"  # 12:00+02:00 in UTC
    assert info["ownerId"] == admin.user_id and info["exifInfo"]["fileSizeInByte"] == len(data)


def test_same_bytes_again_are_a_duplicate(api: httpx.Client, admin: Account, double: DoubleServer) -> None:
    data = os.urandom(50_000)
    first = _upload(api, admin, data)
    before = files_under(double.media / "upload")
    again = _upload(api, admin, data, name="renamed.png")
    assert again.status_code == 200
    assert again.json() == {"status": "duplicate", "id": first.json()["id"]}
    # The received copy is removed by a background job after the answer (test_double_background_jobs times it).
    wait_for(lambda: files_under(double.media / "upload") == before, "the duplicate's copy removed")


@pytest.mark.parametrize("encoding", ["hex", "base64"])
def test_checksum_header_is_trusted_without_the_body(admin: Account, double: DoubleServer, api: httpx.Client,
                                                     spec: OpenApiSpec, encoding: str) -> None:
    data = os.urandom(20_000)
    existing = _upload(api, admin, data).json()["id"]
    digest = hashlib.sha1(data).digest()
    header = digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()
    # Other bytes with the header: still the existing asset.
    other = api.post("/api/assets", headers={"x-api-key": admin.api_key, "x-immich-checksum": header},
                     **upload_form(b"completely different bytes"))
    assert (other.status_code, other.json()) == (200, {"status": "duplicate", "id": existing})
    # Headers only, announcing a body that never comes: the answer does not wait for it.
    with socket.create_connection((LOOPBACK, double.port), timeout=5) as raw:
        raw.sendall(
            f"POST /api/assets HTTP/1.1\r\nHost: double\r\nx-api-key: {admin.api_key}\r\n"
            f"x-immich-checksum: {header}\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            "Content-Length: 50000000\r\n\r\n".encode()
        )
        head, raw_body = read_http_reply(raw)
    assert head.startswith("HTTP/1.1 200"), head
    body = json.loads(raw_body)
    assert body == {"id": existing, "status": "duplicate"}
    spec.check("POST", "/api/assets", 200, body)


def test_validation_failure_leaves_the_received_file(api: httpx.Client, admin: Account,
                                                     double: DoubleServer) -> None:
    """As Immich: a complete body refused by validation stays under upload/, with no database row."""
    before = set(files_under(double.media / "upload"))
    refused: list[bytes] = []
    for fields in ({"fileCreatedAt": "2024-05-01T10:00:00"}, {"visibility": "public"}, {"isFavorite": "maybe"}):
        data = os.urandom(10_000)
        answer = _upload(api, admin, data, **fields)
        body = answer.json()
        assert answer.status_code == 400 and body["message"] == "Validation failed", body
        assert [e["path"] for e in body["errors"]] == [[next(iter(fields))]]
        refused.append(data)
    missing = api.post("/api/assets", headers={"x-api-key": admin.api_key},
                       files={"assetData": ("a.jpg", b"x" * 100, "image/jpeg")}, data={"fileCreatedAt": "x"})
    assert {tuple(e["path"]) for e in missing.json()["errors"]} == {("fileCreatedAt",), ("fileModifiedAt",)}
    refused.append(b"x" * 100)
    left = set(files_under(double.media / "upload")) - before
    assert sorted(p.read_bytes() for p in left) == sorted(refused)
    digests = [hashlib.sha1(data).digest() for data in refused]
    assert double.db.query("SELECT id FROM assets WHERE checksum = ANY(%s)", (digests,)) == []


def test_a_json_body_fails_validation_before_the_missing_file(api: httpx.Client, admin: Account) -> None:
    answer = api.post("/api/assets", headers={"x-api-key": admin.api_key}, json={"deviceId": "phone"})
    body = answer.json()
    assert answer.status_code == 400 and body["message"] == "Validation failed", body
    assert {tuple(e["path"]) for e in body["errors"]} == {("fileCreatedAt",), ("fileModifiedAt",)}
    dated = api.post("/api/assets", headers={"x-api-key": admin.api_key},
                     json={"fileCreatedAt": "2024-05-01T10:00:00Z", "fileModifiedAt": "2024-05-01T10:00:00Z"})
    assert (dated.status_code, dated.json()) == (400, {"message": "File is required"})


def test_no_file_part_and_unsupported_type(api: httpx.Client, admin: Account, double: DoubleServer) -> None:
    before = files_under(double.media / "upload")
    no_file = api.post("/api/assets", headers={"x-api-key": admin.api_key},
                       data={"fileCreatedAt": "2024-05-01T10:00:00Z", "fileModifiedAt": "2024-05-01T10:00:00Z"})
    assert (no_file.status_code, no_file.json()) == (400, {"message": "File is required"})
    text = _upload(api, admin, b"hello", name="notes.txt")
    assert (text.status_code, text.json()) == (400, {"message": "Unsupported file type notes.txt"})
    unauthenticated = api.post("/api/assets", **upload_form(b"who am i"))
    assert unauthenticated.status_code == 401
    assert files_under(double.media / "upload") == before


def test_a_body_cut_mid_way_leaves_nothing(admin: Account, double: DoubleServer) -> None:
    upload = double.media / "upload"
    before = sorted(upload.rglob("*"))
    boundary = "cutcutcut"
    head = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"fileCreatedAt\"\r\n\r\n2024-05-01T10:00:00Z\r\n"
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"assetData\"; filename=\"cut.jpg\"\r\n"
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    raw = socket.create_connection((LOOPBACK, double.port), timeout=5)
    try:
        raw.sendall(
            f"POST /api/assets HTTP/1.1\r\nHost: double\r\nx-api-key: {admin.api_key}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: 20000000\r\n\r\n".encode()
            + head + os.urandom(2_000_000)
        )
        # The server has started writing (the file exists under its final name) before the connection is cut.
        wait_for(lambda: [p for p in upload.rglob("*") if p.is_file() and p not in before],
                 "upload in progress on disk")
    finally:
        raw.close()
    wait_for(lambda: sorted(upload.rglob("*")) == before, "nothing left of the cut upload")
    # The server removes the file, then logs the disconnect: the line may come a moment after the file goes.
    wait_for(lambda: "Client disconnected during POST /api/assets" in double.log(), "the disconnect in the log")


def test_asset_lookup_errors(api: httpx.Client, admin: Account, double: DoubleServer) -> None:
    unknown = _info(api, admin, str(uuid.uuid4()))
    assert (unknown.status_code, unknown.json()) == (400, {"message": "Not found or no asset.read access"})
    malformed = _info(api, admin, "not-a-uuid")
    assert malformed.status_code == 400 and malformed.json()["message"] == "Validation failed"
    assert malformed.json()["errors"][0]["path"] == ["id"]
    other = add_user(double.db, "someone@example.com")
    theirs = _upload(api, other, os.urandom(5_000)).json()["id"]
    foreign = _info(api, admin, theirs)
    assert (foreign.status_code, foreign.json()) == (400, {"message": "Not found or no asset.read access"})
    assert _info(api, other, theirs).status_code == 200


def test_bulk_upload_check(api: httpx.Client, admin: Account) -> None:
    data = os.urandom(8_000)
    asset_id = _upload(api, admin, data).json()["id"]
    digest = hashlib.sha1(data).digest()
    checked = api.post("/api/assets/bulk-upload-check", headers={"x-api-key": admin.api_key}, json={"assets": [
        {"id": "as-base64", "checksum": base64.b64encode(digest).decode()},
        {"id": "as-hex", "checksum": digest.hex()},
        {"id": "new", "checksum": hashlib.sha1(b"never uploaded").hexdigest()},
    ]})
    assert checked.status_code == 200
    results = {r["id"]: r for r in checked.json()["results"]}
    for key in ("as-base64", "as-hex"):
        assert results[key] == {"id": key, "action": "reject", "reason": "duplicate", "assetId": asset_id,
                                "isTrashed": False}
    assert results["new"] == {"id": "new", "action": "accept"}
    invalid = api.post("/api/assets/bulk-upload-check", headers={"x-api-key": admin.api_key}, json={"assets": [{}]})
    assert invalid.status_code == 400 and invalid.json()["message"] == "Validation failed"


def test_trash_keeps_the_file_and_the_duplicate(api: httpx.Client, admin: Account) -> None:
    data = os.urandom(12_000)
    asset_id = _upload(api, admin, data).json()["id"]
    path = Path(_info(api, admin, asset_id).json()["originalPath"])
    trashed = api.request("DELETE", "/api/assets", headers={"x-api-key": admin.api_key},
                          json={"ids": [asset_id], "force": False})
    assert trashed.status_code == 204 and trashed.content == b""
    info = _info(api, admin, asset_id).json()
    assert info["isTrashed"] is True and path.is_file()
    again = _upload(api, admin, data)
    assert (again.status_code, again.json()) == (200, {"status": "duplicate", "id": asset_id})
    check = api.post("/api/assets/bulk-upload-check", headers={"x-api-key": admin.api_key},
                     json={"assets": [{"id": "t", "checksum": hashlib.sha1(data).hexdigest()}]})
    assert check.json()["results"][0]["isTrashed"] is True


def test_force_delete_removes_the_file(api: httpx.Client, admin: Account) -> None:
    asset_id = _upload(api, admin, os.urandom(12_000)).json()["id"]
    path = Path(_info(api, admin, asset_id).json()["originalPath"])
    deleted = api.request("DELETE", "/api/assets", headers={"x-api-key": admin.api_key},
                          json={"ids": [asset_id], "force": True})
    assert deleted.status_code == 204
    wait_for(lambda: not path.exists(), "the deleted original removed from disk", timeout=5)
    gone = _info(api, admin, asset_id)
    assert (gone.status_code, gone.json()) == (400, {"message": "Not found or no asset.read access"})


def test_delete_errors(api: httpx.Client, admin: Account) -> None:
    auth = {"x-api-key": admin.api_key}
    unknown = api.request("DELETE", "/api/assets", headers=auth, json={"ids": [str(uuid.uuid4())], "force": True})
    assert (unknown.status_code, unknown.json()) == (400, {"message": "Not found or no asset.delete access"})
    malformed = api.request("DELETE", "/api/assets", headers=auth, json={"ids": ["nope"]})
    assert malformed.status_code == 400 and malformed.json()["errors"][0]["path"] == ["ids", 0]
    assert api.request("DELETE", "/api/assets", json={"ids": []}).status_code == 401


def test_large_upload_is_streamed_to_disk(api: httpx.Client, admin: Account, double: DoubleServer) -> None:
    """A 20 MiB upload is written as it arrives (the file grows while the body is still being sent)."""
    boundary = "streamed"
    head = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"assetData\"; filename=\"big.jpg\"\r\n\r\n"
    ).encode()
    chunk = os.urandom(1024 * 1024)
    tail = (
        f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"fileCreatedAt\"\r\n\r\n2024-05-01T10:00:00Z"
        f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"fileModifiedAt\"\r\n\r\n2024-05-01T10:00:00Z"
        f"\r\n--{boundary}--\r\n"
    ).encode()
    total = len(head) + 20 * len(chunk) + len(tail)
    upload = double.media / "upload"
    before = set(files_under(upload))
    with socket.create_connection((LOOPBACK, double.port), timeout=10) as raw:
        raw.sendall(
            f"POST /api/assets HTTP/1.1\r\nHost: double\r\nx-api-key: {admin.api_key}\r\nConnection: close\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {total}\r\n\r\n".encode()
            + head
        )
        for _ in range(10):
            raw.sendall(chunk)
        growing = wait_for(lambda: [p for p in set(files_under(upload)) - before if p.stat().st_size >= 5 * len(chunk)],
                           "half the body on disk before the rest is sent")
        assert not growing[0].name.startswith("."), growing  # under its final name while it grows, as Immich
        for _ in range(10):
            raw.sendall(chunk)
        raw.sendall(tail)
        head, raw_body = read_http_reply(raw)
    assert head.startswith("HTTP/1.1 201"), head
    created = json.loads(raw_body)
    assert created["status"] == "created"
    info = _info(api, admin, created["id"]).json()
    assert Path(info["originalPath"]) == growing[0] and growing[0].stat().st_size == 20 * len(chunk)
