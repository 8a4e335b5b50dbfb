"""Shared links: create (an album, or chosen assets), list, read, delete, and open one with its key
(``GET /api/shared-links/me?key=...``; the key also opens the link's assets, see ``assets_library``)."""

from __future__ import annotations

import os
import uuid
from typing import Any

import psycopg
from aiohttp import web

from immich_conformance.double import access, library_dtos
from immich_conformance.double import permissions as P
from immich_conformance.double.access import OWNER
from immich_conformance.double.http_api import caller, json_body, json_response, state
from immich_conformance.double.params import optional_text, path_uuid, uuid_list
from immich_conformance.double.validation import ApiError, Issues, Reader, is_uuid

TYPES = ("ALBUM", "INDIVIDUAL")
KEY_BYTES = 50


async def create_link(request: web.Request) -> web.Response:
    me = await caller(request, P.SHARED_LINK_CREATE)
    reader = Reader(await json_body(request))
    link_type = reader.choice("type", TYPES)
    if "type" not in reader.body:
        reader.issues.invalid_value(["type"], TYPES)
    album_id = reader.string("albumId", required=False, fmt="uuid")
    asset_ids = uuid_list(reader, "assetIds", required=False)
    description = optional_text(reader, "description", nullable=True)
    password = optional_text(reader, "password", nullable=True)
    slug = optional_text(reader, "slug", nullable=True)
    expires = reader.datetime("expiresAt", required=False) if reader.body.get("expiresAt") is not None else None
    allow_upload = reader.boolean("allowUpload")
    allow_download = reader.boolean("allowDownload")
    show_metadata = reader.boolean("showMetadata")
    reader.issues.raise_if_any()
    db = state(request).db
    if link_type == "ALBUM":
        if not album_id:
            raise ApiError(400, "Invalid albumId")
        access.require(await access.albums(db, me, [album_id], roles=(OWNER,)), [album_id], "album.share")
        asset_ids = []
    else:
        if not asset_ids:
            raise ApiError(400, "Invalid assetIds")
        access.require(await access.owned_assets(db, me, asset_ids), asset_ids, "asset.share")
        album_id = None
    link_id = str(uuid.uuid4())
    try:
        async with db.transaction() as conn:
            await conn.execute(
                "INSERT INTO shared_links (id, user_id, key, type, album_id, description, password, expires_at, "
                "allow_upload, allow_download, show_exif, slug) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (link_id, me.user_id, os.urandom(KEY_BYTES), link_type, album_id, description or None, password,
                 expires, True if allow_upload is None else allow_upload,
                 False if show_metadata is False else (True if allow_download is None else allow_download),
                 True if show_metadata is None else show_metadata, slug or None),
            )
            for asset_id in dict.fromkeys(asset_ids):
                await conn.execute("INSERT INTO shared_link_assets (shared_link_id, asset_id) VALUES (%s, %s)",
                                   (link_id, asset_id))
    except psycopg.errors.UniqueViolation:
        raise ApiError(400, "Failed to save shared link") from None
    return json_response(await _link_body(request, link_id, me.user_id), status=201)


async def _link_body(request: web.Request, link_id: str, user_id: str) -> dict[str, Any]:
    db = state(request).db
    row = await db.fetchone("SELECT * FROM shared_links WHERE id = %s AND user_id = %s", (link_id, user_id))
    if row is None:
        raise ApiError(400, "Shared link not found")
    return await library_dtos.shared_link(db, row, user_id)


async def list_links(request: web.Request) -> web.Response:
    me = await caller(request, P.SHARED_LINK_READ)
    issues = Issues()
    for name in ("albumId", "id"):
        if name in request.query and not is_uuid(request.query[name]):
            issues.invalid_format([name], "uuid", "Invalid UUID")
    issues.raise_if_any()
    sql = "SELECT * FROM shared_links WHERE user_id = %(me)s"
    params: dict[str, Any] = {"me": me.user_id}
    for name, column in (("albumId", "album_id"), ("id", "id")):
        if name in request.query:
            sql += f" AND {column} = %({name})s"
            params[name] = request.query[name]
    db = state(request).db
    rows = await db.fetchall(sql + " ORDER BY created_at DESC", params)
    return json_response([await library_dtos.shared_link(db, r, me.user_id) for r in rows])


async def my_link(request: web.Request) -> web.Response:
    """The link whose key (or slug) the caller presents."""
    me = await caller(request, None, shared_link=True)
    if me.shared_link is None:
        raise ApiError(403, "Forbidden")
    if me.shared_link.get("password"):
        raise ApiError(401, "Password required")
    return json_response(await _link_body(request, str(me.shared_link["id"]), me.user_id))


async def get_link(request: web.Request) -> web.Response:
    me = await caller(request, P.SHARED_LINK_READ)
    return json_response(await _link_body(request, path_uuid(request), me.user_id))


async def delete_link(request: web.Request) -> web.Response:
    me = await caller(request, P.SHARED_LINK_DELETE)
    link_id = path_uuid(request)
    if not await state(request).db.execute("DELETE FROM shared_links WHERE id = %s AND user_id = %s",
                                           (link_id, me.user_id)):
        raise ApiError(400, "Shared link not found")
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/shared-links", create_link)
    app.router.add_get("/api/shared-links", list_links)
    app.router.add_get("/api/shared-links/me", my_link)
    app.router.add_get("/api/shared-links/{id}", get_link)
    app.router.add_delete("/api/shared-links/{id}", delete_link)
