"""The HTTP endpoints of the double: the few Immich v3 operations the conformance suite uses."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import uuid
from email.utils import formatdate
from pathlib import Path
from typing import Any

import psycopg
from aiohttp import web

from immich_conformance.double import (
    credentials,
    dtos,
    media_types,
    permissions,
    server_info,
    system_metadata,
    thumbnails,
)
from immich_conformance.double.asset_uploads import ReceivedFile, UploadBody, read_upload, remove_later
from immich_conformance.double.auth import (
    ACCESS_TOKEN_COOKIE,
    AUTH_TYPE_COOKIE,
    IS_AUTHENTICATED_COOKIE,
    Caller,
    authenticate,
    is_granted,
)
from immich_conformance.double.params import uuid_list
from immich_conformance.double.state import STATE, DoubleState
from immich_conformance.double.validation import ApiError, Reader

COOKIE_MAX_AGE = 400 * 24 * 3600
ADMIN_SIGN_UP_LOCK = 0x1A1C_0002
VISIBILITIES = ("archive", "timeline", "hidden", "locked")

REFUSED_BY_GUARD = web.RequestKey("refused_by_guard", bool)

log = logging.getLogger("immich.Api")


def state(request: web.Request) -> DoubleState:
    return request.app[STATE]


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, dumps=lambda v: json.dumps(v, separators=(",", ":")))


async def caller(request: web.Request, permission: str | None, *, shared_link: bool = False,
                 admin: bool = False) -> Caller:
    try:
        return await authenticate(state(request).db, request.headers, request.query, permission=permission,
                                  shared_link=shared_link, admin=admin)
    except ApiError:
        request[REFUSED_BY_GUARD] = True  # Immich's guard answered: its request logger never ran (see app)
        raise


async def json_body(request: web.Request) -> Any:
    """The JSON body as Express' json parser gives it: {} when there is no JSON body."""
    if not request.body_exists or request.content_type != "application/json":
        return {}
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, f"Unexpected token in JSON at position {getattr(exc, 'pos', 0)}") from None


# ---- server ------------------------------------------------------------------------------------------------------


async def ping(request: web.Request) -> web.Response:
    return json_response({"res": "pong"})


async def version(request: web.Request) -> web.Response:
    return json_response(state(request).settings.version.as_dto())


async def features(request: web.Request) -> web.Response:
    return json_response(server_info.FEATURES)


async def config(request: web.Request) -> web.Response:
    db = state(request).db
    admin = await db.fetchone("SELECT 1 AS found FROM users WHERE is_admin LIMIT 1")
    onboarding = await system_metadata.get(db, system_metadata.ADMIN_ONBOARDING) or {}
    body = server_info.config(is_initialized=admin is not None, is_onboarded=bool(onboarding.get("isOnboarded")))
    return json_response(body)


async def well_known(request: web.Request) -> web.Response:
    return json_response(server_info.WELL_KNOWN)


# ---- auth, users, API keys ------------------------------------------------------------------------------------------


async def admin_sign_up(request: web.Request) -> web.Response:
    reader = Reader(await json_body(request))
    email = reader.string("email", fmt="email")
    password = reader.string("password")
    name = reader.string("name")
    reader.issues.raise_if_any()
    assert email is not None and password is not None and name is not None
    db = state(request).db
    async with db.transaction() as conn:
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (ADMIN_SIGN_UP_LOCK,))
        cur = await conn.execute("SELECT 1 FROM users WHERE is_admin LIMIT 1")
        if await cur.fetchone():
            raise ApiError(400, "The server already has an admin")
        cur = await conn.execute(
            # Immich's users table has shouldChangePassword default true, and the sign-up does not set it
            "INSERT INTO users (id, email, name, password_hash, is_admin, storage_label, should_change_password) "
            "VALUES (%s, %s, %s, %s, true, 'admin', true) RETURNING *",
            (uuid.uuid4(), email.strip().lower(), name, credentials.hash_password(password)),
        )
        user = await cur.fetchone()
    assert user is not None
    return json_response(dtos.user_admin(user), status=201)


async def login(request: web.Request) -> web.Response:
    reader = Reader(await json_body(request))
    email = reader.string("email", fmt="email")
    password = reader.string("password")
    reader.issues.raise_if_any()
    assert email is not None and password is not None
    db = state(request).db
    user = await db.fetchone("SELECT * FROM users WHERE email = %s AND deleted_at IS NULL", (email.strip().lower(),))
    valid = credentials.verify_password(password, user["password_hash"] if user else credentials.DUMMY_HASH)
    if user is None or not valid:
        log.warning("Failed login attempt for user %s from ip address %s", email, request.remote)
        raise ApiError(401, "Incorrect email or password")
    token = credentials.random_text(32)
    await db.execute(
        "INSERT INTO sessions (id, token_hash, user_id) VALUES (%s, %s, %s)",
        (uuid.uuid4(), credentials.sha256(token), user["id"]),
    )
    onboarding = await system_metadata.get(db, system_metadata.ADMIN_ONBOARDING) or {}
    response = json_response(dtos.login(user, token, is_onboarded=bool(onboarding.get("isOnboarded"))), status=201)
    secure = request.secure or request.headers.get("x-forwarded-proto", "").lower() == "https"
    expires = formatdate(time.time() + COOKIE_MAX_AGE, usegmt=True)
    for name, value, http_only in (
        (ACCESS_TOKEN_COOKIE, token, True),
        (AUTH_TYPE_COOKIE, "password", True),
        (IS_AUTHENTICATED_COOKIE, "true", False),
    ):
        response.set_cookie(name, value, path="/", max_age=COOKIE_MAX_AGE, expires=expires, httponly=http_only,
                            samesite="Lax", secure=secure)
    return response


async def my_user(request: web.Request) -> web.Response:
    me = await caller(request, permissions.USER_READ)
    return json_response(dtos.user_admin(me.user))


async def create_api_key(request: web.Request) -> web.Response:
    me = await caller(request, permissions.API_KEY_CREATE)
    body = await json_body(request)
    reader = Reader(body)
    name = reader.string("name", required=False)
    granted = _permission_list(reader)
    reader.issues.raise_if_any()
    if me.api_key_permissions is not None and not is_granted(granted, me.api_key_permissions):
        raise ApiError(400, "Cannot grant permissions you do not have")
    secret = credentials.random_text(32)
    row = await state(request).db.fetchone(
        "INSERT INTO api_keys (id, key_hash, user_id, name, permissions) VALUES (%s, %s, %s, %s, %s) RETURNING *",
        (uuid.uuid4(), credentials.sha256(secret), me.user["id"], name or "API Key", granted),
    )
    assert row is not None
    return json_response({"secret": secret, "apiKey": dtos.api_key(row)}, status=201)


def _permission_list(reader: Reader) -> list[str]:
    value = reader.array("permissions")
    if value is None:
        return []
    if not value:
        reader.issues.too_small(["permissions"], 1)
    for index, item in enumerate(value):
        if item not in permissions.PERMISSIONS:
            reader.issues.invalid_value(["permissions", index], permissions.PERMISSIONS)
    return [str(item) for item in value]


# ---- assets -------------------------------------------------------------------------------------------------------


async def _asset_id_for_checksum(request: web.Request, owner_id: str, checksum: bytes) -> str | None:
    row = await state(request).db.fetchone(
        "SELECT id FROM assets WHERE owner_id = %s AND checksum = %s", (owner_id, checksum)
    )
    return str(row["id"]) if row else None


async def upload_asset(request: web.Request) -> web.Response:
    me = await caller(request, permissions.ASSET_UPLOAD)
    header = request.headers.get("x-immich-checksum")
    if header:
        # Trusted as the body's SHA-1 without reading the body, as Immich does.
        checksum = credentials.checksum_from_text(header)
        existing = await _asset_id_for_checksum(request, me.user_id, checksum) if checksum else None
        if existing:
            return json_response({"id": existing, "status": "duplicate"}, status=200)
    st = state(request)
    body = await read_upload(request, st.settings.media_location, me.user_id)
    try:
        return await _store_upload(request, me, body)
    except BaseException:
        body.discard()
        raise


async def _store_upload(request: web.Request, me: Caller, body: UploadBody) -> web.Response:
    st = state(request)
    if body.asset is None and body.multipart:
        raise ApiError(400, "File is required")
    reader = Reader(body.fields, form=True)
    created = reader.datetime("fileCreatedAt")
    modified = reader.datetime("fileModifiedAt")
    filename = reader.string("filename", required=False)
    favorite = reader.boolean("isFavorite")
    visibility = reader.choice("visibility", VISIBILITIES)
    duration = reader.integer("duration", minimum=0)
    reader.string("livePhotoVideoId", required=False, fmt="uuid")
    if reader.issues.items and body.asset is not None:
        body.asset.keep()  # Immich leaves the received original where it is, with no database row
    reader.issues.raise_if_any()
    if body.asset is None:
        raise ApiError(400, "File is required")
    asset = body.asset
    existing = await _asset_id_for_checksum(request, me.user_id, asset.checksum)
    if existing:
        return _duplicate(st, asset, existing)
    original_name = filename or asset.original_name
    path = asset.final_path
    try:
        row = await st.db.fetchone(
            "INSERT INTO assets (id, owner_id, checksum, original_path, original_file_name, asset_type, mime_type, "
            "file_size, file_created_at, file_modified_at, local_date_time, is_favorite, visibility, duration) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING *",
            (uuid.uuid4(), me.user_id, asset.checksum, str(path), original_name,
             media_types.asset_type(original_name), media_types.mime_type(original_name), asset.size,
             created, modified, created, bool(favorite), visibility or "timeline", duration),
        )
    except psycopg.errors.UniqueViolation:
        duplicate = await _asset_id_for_checksum(request, me.user_id, asset.checksum)
        if duplicate is None:
            raise
        return _duplicate(st, asset, duplicate)
    assert row is not None and modified is not None
    asset.keep()
    with contextlib.suppress(OSError):
        os.utime(path, (modified.timestamp(), modified.timestamp()))
    await st.db.execute("UPDATE users SET quota_usage_bytes = quota_usage_bytes + %s WHERE id = %s",
                        (asset.size, me.user_id))
    if row["visibility"] != "hidden":
        st.queue(_announce_upload(st, me.user_id, path, dtos.asset(row, me.user)), "upload-event",
                 after=thumbnails.THUMBNAIL_SECONDS)
    return json_response({"id": str(row["id"]), "status": "created"}, status=201)


def _duplicate(st: DoubleState, asset: ReceivedFile, existing_id: str) -> web.Response:
    """200 duplicate; the received copy stays on disk until Immich's FileDelete job removes it, after the answer."""
    st.queue(remove_later(asset.keep()), "file-delete")
    return json_response({"id": existing_id, "status": "duplicate"}, status=200)


async def _announce_upload(st: DoubleState, user_id: str, path: Path, asset: dict[str, Any]) -> None:
    """``on_upload_success`` once thumbnails would exist; none when the thumbnail job would fail."""
    if await asyncio.to_thread(thumbnails.decodable, path):
        await st.realtime.send_to_user(user_id, "on_upload_success", asset)


async def bulk_upload_check(request: web.Request) -> web.Response:
    me = await caller(request, permissions.ASSET_UPLOAD)
    reader = Reader(await json_body(request))
    items = reader.array("assets") or []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            reader.issues.invalid_type(["assets", index], "object", item)
            continue
        for key in ("id", "checksum"):
            if not isinstance(item.get(key), str):
                reader.issues.invalid_type(["assets", index, key], "string", item.get(key), missing=key not in item)
    reader.issues.raise_if_any()
    wanted = {item["checksum"]: credentials.checksum_from_text(item["checksum"]) for item in items}
    found: dict[bytes, dict[str, Any]] = {}
    sums = [c for c in wanted.values() if c]
    if sums:
        rows = await state(request).db.fetchall(
            "SELECT id, checksum, deleted_at FROM assets WHERE owner_id = %s AND checksum = ANY(%s)",
            (me.user_id, sums),
        )
        found = {bytes(r["checksum"]): r for r in rows}
    results = []
    for item in items:
        match = found.get(wanted[item["checksum"]] or b"")
        if match:
            results.append({"id": item["id"], "action": "reject", "reason": "duplicate", "assetId": str(match["id"]),
                            "isTrashed": match["deleted_at"] is not None})
        else:
            results.append({"id": item["id"], "action": "accept"})
    return json_response({"results": results})


async def delete_assets(request: web.Request) -> web.Response:
    me = await caller(request, permissions.ASSET_DELETE)
    reader = Reader(await json_body(request))
    ids = uuid_list(reader, "ids")
    force = reader.boolean("force")
    reader.issues.raise_if_any()
    st = state(request)
    wanted = sorted(set(ids))
    if wanted:
        owned = await st.db.fetchall("SELECT id FROM assets WHERE id = ANY(%s::uuid[]) AND owner_id = %s",
                                     (wanted, me.user_id))
        if len(owned) != len(wanted):
            raise ApiError(400, "Not found or no asset.delete access")
    if force:
        rows = await st.db.fetchall(
            "DELETE FROM assets WHERE id = ANY(%s::uuid[]) AND owner_id = %s RETURNING id, original_path, file_size",
            (wanted, me.user_id),
        )
        freed = sum(r["file_size"] for r in rows)
        await st.db.execute("UPDATE users SET quota_usage_bytes = GREATEST(quota_usage_bytes - %s, 0) WHERE id = %s",
                            (freed, me.user_id))
        st.queue(_delete_files(st, me.user_id, rows), "file-delete")
    elif wanted:
        await st.db.execute(
            "UPDATE assets SET deleted_at = now(), updated_at = now() "
            "WHERE id = ANY(%s::uuid[]) AND owner_id = %s AND deleted_at IS NULL",
            (wanted, me.user_id),
        )
        st.queue(st.realtime.send_to_user(me.user_id, "on_asset_trash", wanted), "trash-event")
    return web.Response(status=204)


async def _delete_files(st: DoubleState, user_id: str, rows: list[dict[str, Any]]) -> None:
    """Immich's background file deletion after a forced delete."""
    for row in rows:
        path = Path(row["original_path"])
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("Unable to remove file from disk %s: %s", path, exc)
        await st.realtime.send_to_user(user_id, "on_asset_delete", str(row["id"]))


def add_routes(app: web.Application) -> None:
    from immich_conformance.double import library_routes  # its handlers use this module's helpers

    library_routes.add_routes(app)  # first: fixed paths such as /api/assets/statistics before /api/assets/{id}
    app.router.add_get("/api/server/ping", ping)
    app.router.add_get("/api/server/version", version)
    app.router.add_get("/api/server/features", features)
    app.router.add_get("/api/server/config", config)
    app.router.add_get("/.well-known/immich", well_known)
    app.router.add_post("/api/auth/admin-sign-up", admin_sign_up)
    app.router.add_post("/api/auth/login", login)
    app.router.add_get("/api/users/me", my_user)
    app.router.add_post("/api/api-keys", create_api_key)
    app.router.add_post("/api/assets", upload_asset)
    app.router.add_delete("/api/assets", delete_assets)
    app.router.add_post("/api/assets/bulk-upload-check", bulk_upload_check)

