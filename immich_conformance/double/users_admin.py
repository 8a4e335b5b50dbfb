"""Users made by the admin, the user list, API keys (list, the caller's own, delete) and logout."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from aiohttp import web

from immich_conformance.double import credentials, dtos, library_dtos
from immich_conformance.double import permissions as P
from immich_conformance.double.http_api import caller, json_body, json_response, state
from immich_conformance.double.params import optional_text, path_uuid, query_flags
from immich_conformance.double.state import DoubleState
from immich_conformance.double.validation import ApiError, Reader

LOGIN_URL = "/auth/login?autoLaunch=0"
COOKIES = ("immich_access_token", "immich_auth_type", "immich_is_authenticated")


async def create_user(request: web.Request) -> web.Response:
    await caller(request, P.ADMIN_USER_CREATE, admin=True)
    reader = Reader(await json_body(request))
    email = reader.string("email", fmt="email")
    name = reader.string("name")
    password = reader.string("password")
    is_admin = reader.boolean("isAdmin")
    should_change = reader.boolean("shouldChangePassword")
    reader.boolean("notify")
    storage_label = optional_text(reader, "storageLabel", nullable=True)
    reader.issues.raise_if_any()
    assert email is not None and name is not None and password is not None
    if not password:
        raise ApiError(400, "password is required")
    try:
        row = await state(request).db.fetchone(
            "INSERT INTO users (id, email, name, password_hash, is_admin, storage_label, should_change_password) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING *",
            (uuid.uuid4(), email.strip().lower(), name, credentials.hash_password(password), bool(is_admin),
             storage_label or None, True if should_change is None else should_change),
        )
    except psycopg.errors.UniqueViolation:
        raise ApiError(400, "User exists") from None
    assert row is not None
    return json_response(library_dtos.user_admin(row), status=201)


async def search_users_admin(request: web.Request) -> web.Response:
    await caller(request, P.ADMIN_USER_READ, admin=True)
    flags = query_flags(request.query, "withDeleted")
    rows = await state(request).db.fetchall(
        "SELECT * FROM users WHERE (%s OR deleted_at IS NULL) ORDER BY created_at DESC", (bool(flags["withDeleted"]),)
    )
    return json_response([library_dtos.user_admin(r) for r in rows])


async def _user_or_fail(st: DoubleState, user_id: str, *, with_deleted: bool) -> dict[str, Any]:
    row = await st.db.fetchone("SELECT * FROM users WHERE id = %s AND (%s OR deleted_at IS NULL)",
                               (user_id, with_deleted))
    if row is None:
        raise ApiError(400, "User not found")
    return row


async def get_user_admin(request: web.Request) -> web.Response:
    await caller(request, P.ADMIN_USER_READ, admin=True)
    row = await _user_or_fail(state(request), path_uuid(request), with_deleted=True)
    return json_response(library_dtos.user_admin(row))


async def delete_user(request: web.Request) -> web.Response:
    """Soft delete (status ``deleted``); with ``force`` the user and everything they own is removed by a job."""
    me = await caller(request, P.ADMIN_USER_DELETE, admin=True)
    user_id = path_uuid(request)
    reader = Reader(await json_body(request))
    force = reader.boolean("force")
    reader.issues.raise_if_any()
    st = state(request)
    await _user_or_fail(st, user_id, with_deleted=False)
    if user_id == me.user_id:
        raise ApiError(403, "Cannot delete your own account")
    await st.db.execute("UPDATE albums SET deleted_at = now() WHERE owner_id = %s AND deleted_at IS NULL", (user_id,))
    row = await st.db.fetchone(
        "UPDATE users SET status = %s, deleted_at = now(), updated_at = now() WHERE id = %s RETURNING *",
        ("removing" if force else "deleted", user_id),
    )
    assert row is not None
    if force:
        st.queue(_remove_user(st, user_id), "user-delete")
    return json_response(library_dtos.user_admin(row))


async def _remove_user(st: DoubleState, user_id: str) -> None:
    """Immich's UserDelete job: the user's originals, then the user and all their rows."""
    from immich_conformance.double.http_api import _delete_files

    rows = await st.db.fetchall("SELECT id, original_path, file_size FROM assets WHERE owner_id = %s", (user_id,))
    await st.db.execute("DELETE FROM users WHERE id = %s", (user_id,))
    await _delete_files(st, user_id, rows)


async def search_users(request: web.Request) -> web.Response:
    await caller(request, P.USER_READ)
    rows = await state(request).db.fetchall("SELECT * FROM users WHERE deleted_at IS NULL ORDER BY created_at DESC")
    return json_response([library_dtos.user(r) for r in rows])


async def list_api_keys(request: web.Request) -> web.Response:
    me = await caller(request, P.API_KEY_READ)
    rows = await state(request).db.fetchall(
        "SELECT * FROM api_keys WHERE user_id = %s ORDER BY created_at DESC", (me.user_id,))
    return json_response([dtos.api_key(r) for r in rows])


async def my_api_key(request: web.Request) -> web.Response:
    me = await caller(request, None)
    if me.api_key_id is None:
        raise ApiError(403, "Not authenticated with an API Key")
    row = await state(request).db.fetchone("SELECT * FROM api_keys WHERE id = %s AND user_id = %s",
                                           (me.api_key_id, me.user_id))
    if row is None:
        raise ApiError(400, "API Key not found")
    return json_response(dtos.api_key(row))


async def delete_api_key(request: web.Request) -> web.Response:
    me = await caller(request, P.API_KEY_DELETE)
    key_id = path_uuid(request)
    if not await state(request).db.execute("DELETE FROM api_keys WHERE id = %s AND user_id = %s",
                                           (key_id, me.user_id)):
        raise ApiError(400, "API Key not found")
    return web.Response(status=204)


async def logout(request: web.Request) -> web.Response:
    """Ends the session (an API key stays valid) and clears the login cookies."""
    me = await caller(request, P.ALL)
    if me.session_id is not None:
        await state(request).db.execute("DELETE FROM sessions WHERE id = %s", (me.session_id,))
    response = json_response({"successful": True, "redirectUri": LOGIN_URL})
    for name in COOKIES:
        response.del_cookie(name, path="/")
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/admin/users", create_user)
    app.router.add_get("/api/admin/users", search_users_admin)
    app.router.add_get("/api/admin/users/{id}", get_user_admin)
    app.router.add_delete("/api/admin/users/{id}", delete_user)
    app.router.add_get("/api/users", search_users)
    app.router.add_get("/api/api-keys", list_api_keys)
    app.router.add_get("/api/api-keys/me", my_api_key)
    app.router.add_delete("/api/api-keys/{id}", delete_api_key)
    app.router.add_post("/api/auth/logout", logout)
