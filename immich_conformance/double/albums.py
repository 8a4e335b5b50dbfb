"""Albums: list (owned and shared with the caller), create, read, delete, add assets, share with users."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from immich_conformance.double import access, library_dtos
from immich_conformance.double import permissions as P
from immich_conformance.double.access import ANY_ROLE, EDITOR, OWNER, VIEWER
from immich_conformance.double.auth import Caller
from immich_conformance.double.database import Database
from immich_conformance.double.http_api import caller, json_body, json_response, state
from immich_conformance.double.params import optional_text, path_uuid, query_flags, uuid_list
from immich_conformance.double.validation import ApiError, Issues, Reader, is_uuid

ROLES = (EDITOR, OWNER, VIEWER)


async def list_albums(request: web.Request) -> web.Response:
    me = await caller(request, P.ALBUM_READ)
    flags = query_flags(request.query, "isOwned", "isShared")
    issues = Issues()
    for name in ("assetId", "id"):
        if name in request.query and not is_uuid(request.query[name]):
            issues.invalid_format([name], "uuid", "Invalid UUID")
    issues.raise_if_any()
    db = state(request).db
    sql = ("SELECT al.* FROM albums al JOIN album_users me ON me.album_id = al.id AND me.user_id = %(me)s "
           "WHERE al.deleted_at IS NULL")
    params: dict[str, Any] = {"me": me.user_id}
    if "assetId" in request.query:
        sql += " AND EXISTS (SELECT 1 FROM album_assets aa WHERE aa.album_id = al.id AND aa.asset_id = %(asset)s)"
        params["asset"] = request.query["assetId"]
    else:
        if flags["isOwned"] is not None:
            sql += " AND me.role " + ("=" if flags["isOwned"] else "<>") + " 'owner'"
        if flags["isShared"] is not None:
            shared = ("(EXISTS (SELECT 1 FROM album_users o WHERE o.album_id = al.id AND o.role <> 'owner') "
                      "OR EXISTS (SELECT 1 FROM shared_links l WHERE l.album_id = al.id))")
            sql += f" AND {'' if flags['isShared'] else 'NOT '}{shared}"
        if "id" in request.query:
            sql += " AND al.id = %(id)s"
            params["id"] = request.query["id"]
        if "name" in request.query:
            sql += " AND al.album_name = %(name)s"
            params["name"] = request.query["name"]
    rows = await db.fetchall(sql + " ORDER BY al.created_at DESC", params)
    return json_response([await library_dtos.album(db, r, me.user_id) for r in rows])


def _album_users(reader: Reader, key: str, *, default_role: str | None) -> list[tuple[str, str]]:
    value = reader.body.get(key)
    if key not in reader.body and default_role is None:
        return []
    if not isinstance(value, list):
        reader.issues.invalid_type([key], "array", value, missing=key not in reader.body)
        return []
    found = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            reader.issues.invalid_type([key, index], "object", item)
            continue
        user_id, role = item.get("userId"), item.get("role", default_role)
        if not is_uuid(user_id):
            if isinstance(user_id, str):
                reader.issues.invalid_format([key, index, "userId"], "uuid", "Invalid UUID")
            else:
                reader.issues.invalid_type([key, index, "userId"], "string", user_id, missing="userId" not in item)
            continue
        if role not in ROLES:
            reader.issues.invalid_value([key, index, "role"], ROLES)
            continue
        found.append((str(user_id), str(role)))
    return found


async def _existing_users(db: Database, user_ids: list[str]) -> None:
    if not user_ids:
        return
    rows = await db.fetchall("SELECT id FROM users WHERE id = ANY(%s::uuid[]) AND deleted_at IS NULL", (user_ids,))
    if len(rows) != len(set(user_ids)):
        raise ApiError(400, "Invalid user")


async def create_album(request: web.Request) -> web.Response:
    me = await caller(request, P.ALBUM_CREATE)
    reader = Reader(await json_body(request))
    name = reader.string("albumName")
    description = optional_text(reader, "description")
    asset_ids = uuid_list(reader, "assetIds", required=False)
    members = _album_users(reader, "albumUsers", default_role=None)
    reader.issues.raise_if_any()
    assert name is not None
    members = [(u, r) for u, r in members if u != me.user_id]
    st = state(request)
    await _existing_users(st.db, [u for u, _ in members])
    allowed = await access.owned_assets(st.db, me, asset_ids)
    kept = [a for a in dict.fromkeys(asset_ids) if a in allowed]
    album_id = str(uuid.uuid4())
    async with st.db.transaction() as conn:
        await conn.execute(
            "INSERT INTO albums (id, owner_id, album_name, description, thumbnail_asset_id) "
            "VALUES (%s, %s, %s, %s, %s)",
            (album_id, me.user_id, name, description or "", kept[0] if kept else None),
        )
        for user_id, role in [(me.user_id, OWNER), *members]:
            await conn.execute("INSERT INTO album_users (album_id, user_id, role) VALUES (%s, %s, %s) "
                               "ON CONFLICT DO NOTHING", (album_id, user_id, role))
        for asset_id in kept:
            await conn.execute("INSERT INTO album_assets (album_id, asset_id) VALUES (%s, %s)", (album_id, asset_id))
    return json_response(await _album_body(st.db, album_id, me), status=201)


async def _album_body(db: Database, album_id: str, me: Caller) -> dict[str, Any]:
    row = await db.fetchone("SELECT * FROM albums WHERE id = %s", (album_id,))
    if row is None:
        raise ApiError(400, "Album not found")
    return await library_dtos.album(db, row, me.user_id)


async def _found_album(db: Database, album_id: str) -> None:
    if await db.fetchone("SELECT id FROM albums WHERE id = %s AND deleted_at IS NULL", (album_id,)) is None:
        raise ApiError(400, "Album not found")


async def get_album(request: web.Request) -> web.Response:
    me = await caller(request, P.ALBUM_READ, shared_link=True)
    album_id = path_uuid(request)
    db = state(request).db
    access.require(await access.albums(db, me, [album_id], roles=ANY_ROLE), [album_id], "album.read")
    return json_response(await _album_body(db, album_id, me))


async def delete_album(request: web.Request) -> web.Response:
    me = await caller(request, P.ALBUM_DELETE)
    album_id = path_uuid(request)
    db = state(request).db
    access.require(await access.albums(db, me, [album_id], roles=(OWNER,)), [album_id], "album.delete")
    await db.execute("DELETE FROM albums WHERE id = %s", (album_id,))
    return web.Response(status=204)


async def add_assets(request: web.Request) -> web.Response:
    """Per asset: success, or ``duplicate`` (already in) / ``no_permission`` (not the caller's, or unknown)."""
    me = await caller(request, P.ALBUM_ASSET_CREATE)
    album_id = path_uuid(request)
    reader = Reader(await json_body(request))
    ids = uuid_list(reader, "ids")
    reader.issues.raise_if_any()
    db = state(request).db
    await _found_album(db, album_id)
    access.require(await access.albums(db, me, [album_id], roles=(OWNER, EDITOR)), [album_id], "albumAsset.create")
    present = {str(r["asset_id"]) for r in await db.fetchall(
        "SELECT asset_id FROM album_assets WHERE album_id = %s AND asset_id = ANY(%s::uuid[])", (album_id, ids))}
    allowed = await access.owned_assets(db, me, [i for i in ids if i not in present])
    results, added = access.bulk_add_results(ids, present, allowed)
    if added:
        async with db.transaction() as conn:
            for asset_id in added:
                await conn.execute("INSERT INTO album_assets (album_id, asset_id) VALUES (%s, %s)",
                                   (album_id, asset_id))
            await conn.execute("UPDATE albums SET updated_at = now(), "
                               "thumbnail_asset_id = COALESCE(thumbnail_asset_id, %s) WHERE id = %s",
                               (added[0], album_id))
    return json_response(results)


async def add_users(request: web.Request) -> web.Response:
    me = await caller(request, P.ALBUM_USER_CREATE)
    album_id = path_uuid(request)
    reader = Reader(await json_body(request))
    members = _album_users(reader, "albumUsers", default_role=EDITOR)
    if isinstance(reader.body.get("albumUsers"), list) and not reader.body["albumUsers"]:
        reader.issues.too_small(["albumUsers"], 1)
    reader.issues.raise_if_any()
    db = state(request).db
    access.require(await access.albums(db, me, [album_id], roles=(OWNER,)), [album_id], "album.share")
    current = {str(r["user_id"]) for r in await db.fetchall(
        "SELECT user_id FROM album_users WHERE album_id = %s", (album_id,))}
    for user_id, role in members:
        if role == OWNER:
            raise ApiError(400, "Cannot add another owner")
        if user_id in current:
            continue
        await _existing_users(db, [user_id])
        await db.execute("INSERT INTO album_users (album_id, user_id, role) VALUES (%s, %s, %s)",
                         (album_id, user_id, role))
        current.add(user_id)
    return json_response(await _album_body(db, album_id, me))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/albums", list_albums)
    app.router.add_post("/api/albums", create_album)
    app.router.add_get("/api/albums/{id}", get_album)
    app.router.add_delete("/api/albums/{id}", delete_album)
    app.router.add_put("/api/albums/{id}/assets", add_assets)
    app.router.add_put("/api/albums/{id}/users", add_users)
