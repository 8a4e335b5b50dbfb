"""Tags: create (optionally under a parent: its value is the path), list, delete, and tag assets."""

from __future__ import annotations

import re
import uuid

import psycopg
from aiohttp import web

from immich_conformance.double import access, library_dtos
from immich_conformance.double import permissions as P
from immich_conformance.double.http_api import caller, json_body, json_response, state
from immich_conformance.double.params import optional_text, path_uuid, uuid_list
from immich_conformance.double.validation import ApiError, Reader

COLOR = re.compile(r"^#?([0-9A-Fa-f]{3}|[0-9A-Fa-f]{4}|[0-9A-Fa-f]{6}|[0-9A-Fa-f]{8})$")


async def create_tag(request: web.Request) -> web.Response:
    me = await caller(request, P.TAG_CREATE)
    reader = Reader(await json_body(request))
    name = reader.string("name")
    color = optional_text(reader, "color", nullable=True)
    if color is not None and not COLOR.match(color):
        reader.issues.invalid_format(["color"], "regex", f"Invalid string: must match pattern /{COLOR.pattern}/",
                                     COLOR)
        color = None
    parent_id = None
    if reader.body.get("parentId") is not None:
        parent_id = reader.string("parentId", fmt="uuid")
    reader.issues.raise_if_any()
    assert name is not None
    db = state(request).db
    value = name
    if parent_id:
        access.require(await access.owned_tags(db, me, [parent_id]), [parent_id], "tag.read")
        parent = await db.fetchone("SELECT value FROM tags WHERE id = %s", (parent_id,))
        assert parent is not None
        value = f"{parent['value']}/{name}"
    if color and not color.startswith("#"):
        color = f"#{color}"
    try:
        row = await db.fetchone(
            "INSERT INTO tags (id, user_id, value, color, parent_id) VALUES (%s, %s, %s, %s, %s) RETURNING *",
            (uuid.uuid4(), me.user_id, value, color, parent_id),
        )
    except psycopg.errors.UniqueViolation:
        raise ApiError(400, "A tag with that name already exists") from None
    assert row is not None
    return json_response(library_dtos.tag(row), status=201)


async def list_tags(request: web.Request) -> web.Response:
    me = await caller(request, P.TAG_READ)
    rows = await state(request).db.fetchall("SELECT * FROM tags WHERE user_id = %s ORDER BY value", (me.user_id,))
    return json_response([library_dtos.tag(r) for r in rows])


async def delete_tag(request: web.Request) -> web.Response:
    me = await caller(request, P.TAG_DELETE)
    tag_id = path_uuid(request)
    db = state(request).db
    access.require(await access.owned_tags(db, me, [tag_id]), [tag_id], "tag.delete")
    await db.execute("DELETE FROM tags WHERE id = %s", (tag_id,))
    return web.Response(status=204)


async def tag_assets_in_bulk(request: web.Request) -> web.Response:
    """Every asset the caller may edit gets every tag the caller owns; the count is of new (tag, asset) pairs."""
    me = await caller(request, P.TAG_ASSET)
    reader = Reader(await json_body(request))
    tag_ids = uuid_list(reader, "tagIds")
    asset_ids = uuid_list(reader, "assetIds")
    reader.issues.raise_if_any()
    db = state(request).db
    tags = await access.owned_tags(db, me, tag_ids)  # others' and unknown ids are left out, as in Immich
    allowed = await access.owned_assets(db, me, asset_ids)
    count = 0
    async with db.transaction() as conn:
        for tag_id in dict.fromkeys(t for t in tag_ids if t in tags):
            for asset_id in dict.fromkeys(a for a in asset_ids if a in allowed):
                cur = await conn.execute("INSERT INTO tag_assets (tag_id, asset_id) VALUES (%s, %s) "
                                         "ON CONFLICT DO NOTHING", (tag_id, asset_id))
                count += cur.rowcount
    return json_response({"count": count})


async def tag_assets(request: web.Request) -> web.Response:
    me = await caller(request, P.TAG_ASSET)
    tag_id = path_uuid(request)
    reader = Reader(await json_body(request))
    ids = uuid_list(reader, "ids")
    reader.issues.raise_if_any()
    db = state(request).db
    access.require(await access.owned_tags(db, me, [tag_id]), [tag_id], "tag.asset")
    present = {str(r["asset_id"]) for r in await db.fetchall(
        "SELECT asset_id FROM tag_assets WHERE tag_id = %s AND asset_id = ANY(%s::uuid[])", (tag_id, ids))}
    allowed = await access.owned_assets(db, me, [i for i in ids if i not in present])
    results, added = access.bulk_add_results(ids, present, allowed)
    for asset_id in added:
        await db.execute("INSERT INTO tag_assets (tag_id, asset_id) VALUES (%s, %s)", (tag_id, asset_id))
    return json_response(results)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/tags", create_tag)
    app.router.add_get("/api/tags", list_tags)
    app.router.add_put("/api/tags/assets", tag_assets_in_bulk)
    app.router.add_delete("/api/tags/{id}", delete_tag)
    app.router.add_put("/api/tags/{id}/assets", tag_assets)
