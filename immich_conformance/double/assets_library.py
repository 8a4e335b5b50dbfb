"""What users do with their assets beyond uploading: read one (also through an album or a shared link), edit it
(favourite, description, visibility, date, place, rating), download its original, count them, empty or restore the
trash."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web
from psycopg.types.json import Jsonb

from immich_conformance.double import access, dtos, library_dtos
from immich_conformance.double import permissions as P
from immich_conformance.double.http_api import VISIBILITIES, _delete_files, caller, json_body, json_response, state
from immich_conformance.double.params import path_uuid, query_flags, uuid_list
from immich_conformance.double.validation import ApiError, Reader

EXIF_EDITS = ("description", "dateTimeOriginal", "latitude", "longitude", "rating")


async def asset_info(request: web.Request) -> web.Response:
    me = await caller(request, P.ASSET_READ, shared_link=True)
    asset_id = path_uuid(request)
    db = state(request).db
    access.require(await access.readable_assets(db, me, [asset_id]), [asset_id], "asset.read")
    row = await db.fetchone("SELECT * FROM assets WHERE id = %s", (asset_id,))
    assert row is not None
    body = await library_dtos.asset(db, row)
    if me.shared_link is not None:
        del body["owner"]  # Immich hides the owner from a shared link's visitors
    return json_response(body)


def _number(reader: Reader, key: str, low: float, high: float) -> float | None:
    if key not in reader.body:
        return None
    value = reader.body[key]
    if not isinstance(value, int | float) or isinstance(value, bool):
        reader.issues.invalid_type([key], "number", value)
        return None
    if not low <= value <= high:
        origin = "too_small" if value < low else "too_big"
        bound = low if value < low else high
        relation = ">=" if value < low else "<="
        reader.issues.items.append({"origin": "number", "code": origin, "path": [key], "inclusive": True,
                                    "minimum" if value < low else "maximum": bound,
                                    "message": f"Too {'small' if value < low else 'big'}: expected number to be "
                                               f"{relation}{bound:g}"})
        return None
    return float(value)


def _changes(reader: Reader) -> tuple[dict[str, Any], dict[str, Any]]:
    """(asset columns, exif fields) the body asks to change; issues recorded on the reader."""
    columns: dict[str, Any] = {}
    exif: dict[str, Any] = {}
    favourite = reader.boolean("isFavorite")
    if favourite is not None:
        columns["is_favorite"] = favourite
    visibility = reader.choice("visibility", VISIBILITIES)
    if visibility is not None:
        columns["visibility"] = visibility
    if "description" in reader.body:
        description = reader.string("description")
        if description is not None:
            exif["description"] = description
    if "dateTimeOriginal" in reader.body:
        when = reader.datetime("dateTimeOriginal")
        if when is not None:
            exif["dateTimeOriginal"] = dtos.iso(when)
    for key, low, high in (("latitude", -90, 90), ("longitude", -180, 180)):
        value = _number(reader, key, low, high)
        if value is not None:
            exif[key] = value
    if "rating" in reader.body:
        rating = reader.body["rating"]
        if rating is not None:
            rating = reader.integer("rating", minimum=-1)
            if rating is not None and rating > 5:
                reader.issues.items.append({"origin": "number", "code": "too_big", "maximum": 5, "inclusive": True,
                                            "path": ["rating"], "message": "Too big: expected number to be <=5"})
        exif["rating"] = rating
    if "livePhotoVideoId" in reader.body and reader.body["livePhotoVideoId"] is not None:
        reader.string("livePhotoVideoId", fmt="uuid")
    return columns, exif


async def _apply(request: web.Request, ids: list[str], columns: dict[str, Any], exif: dict[str, Any]) -> None:
    sets = [f"{name} = %s" for name in columns] + ["exif_edits = exif_edits || %s", "updated_at = now()"]
    await state(request).db.execute(
        f"UPDATE assets SET {', '.join(sets)} WHERE id = ANY(%s::uuid[])",  # noqa: S608 - fixed column names
        (*columns.values(), Jsonb(exif), ids),
    )


async def update_asset(request: web.Request) -> web.Response:
    me = await caller(request, P.ASSET_UPDATE)
    asset_id = path_uuid(request)
    reader = Reader(await json_body(request))
    columns, exif = _changes(reader)
    reader.issues.raise_if_any()
    db = state(request).db
    access.require(await access.owned_assets(db, me, [asset_id]), [asset_id], "asset.update")
    await _apply(request, [asset_id], columns, exif)
    row = await db.fetchone("SELECT * FROM assets WHERE id = %s", (asset_id,))
    assert row is not None
    return json_response(await library_dtos.asset(db, row, me.user))


async def update_assets(request: web.Request) -> web.Response:
    me = await caller(request, P.ASSET_UPDATE)
    reader = Reader(await json_body(request))
    ids = uuid_list(reader, "ids")
    columns, exif = _changes(reader)
    for key in ("dateTimeRelative",):
        reader.integer(key)
    if "timeZone" in reader.body:
        reader.string("timeZone")
    reader.issues.raise_if_any()
    wanted = sorted(set(ids))
    access.require(await access.owned_assets(state(request).db, me, wanted), wanted, "asset.update")
    if wanted:
        await _apply(request, wanted, columns, exif)
    return web.Response(status=204)


async def statistics(request: web.Request) -> web.Response:
    me = await caller(request, P.ASSET_STATISTICS)
    flags = query_flags(request.query, "isFavorite", "isTrashed")
    visibility = request.query.get("visibility")
    if visibility is not None and visibility not in VISIBILITIES:
        reader = Reader({"visibility": visibility})
        reader.choice("visibility", VISIBILITIES)
        reader.issues.raise_if_any()
    sql = "SELECT asset_type, count(*) AS n FROM assets WHERE owner_id = %(me)s"
    params: dict[str, Any] = {"me": me.user_id}
    if visibility:
        sql += " AND visibility = %(visibility)s"
        params["visibility"] = visibility
    else:
        sql += " AND visibility IN ('archive', 'timeline')"
    if flags["isFavorite"] is not None:
        sql += " AND is_favorite = %(favourite)s"
        params["favourite"] = flags["isFavorite"]
    sql += " AND deleted_at IS NOT NULL" if flags["isTrashed"] else " AND deleted_at IS NULL"
    counts = {r["asset_type"]: r["n"] for r in await state(request).db.fetchall(sql + " GROUP BY asset_type", params)}
    images, videos = counts.get("IMAGE", 0), counts.get("VIDEO", 0)
    return json_response({"images": images, "videos": videos, "total": images + videos})


async def download_original(request: web.Request) -> web.StreamResponse:
    me = await caller(request, P.ASSET_DOWNLOAD, shared_link=True)
    asset_id = path_uuid(request)
    db = state(request).db
    access.require(await access.readable_assets(db, me, [asset_id], download=True), [asset_id], "asset.download")
    row = await db.fetchone("SELECT original_path, original_file_name, mime_type FROM assets WHERE id = %s",
                            (asset_id,))
    assert row is not None
    path = Path(row["original_path"])
    if not path.is_file():
        raise ApiError(404, "Not Found")
    return web.FileResponse(path, headers={
        "Content-Type": row["mime_type"],
        "Cache-Control": "private, max-age=86400, no-transform",
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(row['original_file_name'])}",
    })


async def restore_trash(request: web.Request) -> web.Response:
    me = await caller(request, P.ASSET_DELETE)
    count = await state(request).db.execute(
        "UPDATE assets SET deleted_at = NULL, updated_at = now() WHERE owner_id = %s AND deleted_at IS NOT NULL",
        (me.user_id,),
    )
    return json_response({"count": count})


async def empty_trash(request: web.Request) -> web.Response:
    """Trashed assets go at once from the database; their files are removed by a background job."""
    me = await caller(request, P.ASSET_DELETE)
    st = state(request)
    rows = await st.db.fetchall(
        "DELETE FROM assets WHERE owner_id = %s AND deleted_at IS NOT NULL RETURNING id, original_path, file_size",
        (me.user_id,),
    )
    if rows:
        await st.db.execute("UPDATE users SET quota_usage_bytes = GREATEST(quota_usage_bytes - %s, 0) WHERE id = %s",
                            (sum(r["file_size"] for r in rows), me.user_id))
        st.queue(_delete_files(st, me.user_id, rows), "file-delete")
    return json_response({"count": len(rows)})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/assets/statistics", statistics)
    app.router.add_get("/api/assets/{id}", asset_info)
    app.router.add_put("/api/assets/{id}", update_asset)
    app.router.add_put("/api/assets", update_assets)
    app.router.add_get("/api/assets/{id}/original", download_original)
    app.router.add_post("/api/trash/restore", restore_trash)
    app.router.add_post("/api/trash/empty", empty_trash)
