"""Immich's integrity checks (``IntegrityService``, v3.0.3): jobs in the ``integrityCheck`` queue that fill the
``integrity_report`` table, and the admin endpoints that read it.

- ``missing_file``: every asset not in the trash whose original is not on disk (a report that no longer holds is
  removed by the next run).
- ``untracked_file``: every file under ``upload/``, ``library/``, ``encoded-video/`` and ``thumbs/`` (hidden files
  left out) that no asset points at.
- ``checksum_mismatch``: every asset not in the trash whose original's SHA-1 differs from the stored checksum (a
  missing file is left to ``missing_file``), in the order assets were created.
Queued by ``POST /api/jobs`` with ``integrity-missing-files``, ``integrity-untracked-files``,
``integrity-checksum-mismatch`` (``…-refresh``: only re-check existing reports; ``…-delete-all``: act on every
report of a type: trash the asset, or remove the untracked file). ``GET /api/admin/integrity/summary`` counts each
type; ``GET /api/admin/integrity/report?type=…&limit=…&cursor=…`` pages newest first (report ids are UUIDv7, as
Immich's; items carry ``assetId``, ``fileAssetId`` and ``createdAt`` besides what the spec lists, as Immich's do).
The double has no encoded videos, thumbnails or people, so only originals are tracked.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import os
import re
import time
import uuid
from pathlib import Path
from typing import Any

from aiohttp import web

from immich_conformance.double import jobs
from immich_conformance.double.database import Database
from immich_conformance.double.http_api import caller, json_response, state
from immich_conformance.double.validation import ApiError, Issues

log = logging.getLogger("immich.IntegrityService")

QUEUE = "integrityCheck"
SINCE = (3, 0, 0)
"""The release that brought the integrity checks: before it their routes are unknown (404) and their job names
refused."""
MISSING, UNTRACKED, CHECKSUM = "missing_file", "untracked_file", "checksum_mismatch"
TYPES = (UNTRACKED, MISSING, CHECKSUM)
CRAWLED = ("encoded-video", "library", "upload", "thumbs")
DEFAULT_LIMIT = 500
TABLE_LOCK = 0x1A1C_0101
ANY_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

SCHEMA = """
CREATE TABLE IF NOT EXISTS integrity_report (
    id uuid PRIMARY KEY,
    type text NOT NULL,
    path text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    asset_id uuid REFERENCES assets (id) ON DELETE CASCADE ON UPDATE CASCADE,
    file_asset_id uuid,
    CONSTRAINT integrity_report_type_path UNIQUE (type, path)
);
"""


def uuid7() -> str:
    millis = int(time.time() * 1000).to_bytes(6, "big")
    raw = bytearray(millis + os.urandom(10))
    raw[6] = (raw[6] & 0x0F) | 0x70
    raw[8] = (raw[8] & 0x3F) | 0x80
    return str(uuid.UUID(bytes=bytes(raw)))


async def ensure_table(db: Database) -> None:
    """Create the report table if missing (jobs running at once take turns: concurrent CREATEs collide)."""
    async with db.transaction() as conn:
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (TABLE_LOCK,))
        await conn.execute(SCHEMA)


async def _report(db: Database, kind: str, path: str, asset_id: str | None = None) -> None:
    await db.execute(
        "INSERT INTO integrity_report (id, type, path, asset_id) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (type, path) DO UPDATE SET asset_id = EXCLUDED.asset_id, file_asset_id = NULL",
        (uuid7(), kind, path, asset_id))


async def _drop(db: Database, ids: list[Any]) -> None:
    if ids:
        await db.execute("DELETE FROM integrity_report WHERE id = ANY(%s)", (ids,))


def _walk(media: Path) -> list[str]:
    found: list[str] = []
    for name in CRAWLED:
        for root, dirs, files in os.walk(media / name):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            found += [os.path.join(root, f) for f in files if not f.startswith(".")]
    return found


async def untracked_files(db: Database, media: Path, *, refresh_only: bool = False) -> None:
    await ensure_table(db)
    reports = await db.fetchall("SELECT id, path FROM integrity_report WHERE type = %s", (UNTRACKED,))
    await _drop(db, [r["id"] for r in reports if not os.path.exists(r["path"])])
    if refresh_only:
        log.info("Refresh complete.")
        return
    log.info("Scanning for untracked files...")
    paths = await asyncio.to_thread(_walk, media)
    tracked = {r["original_path"] for r in await db.fetchall(
        "SELECT original_path FROM assets WHERE original_path = ANY(%s)", (paths,))}
    untracked = [p for p in paths if p not in tracked]
    for path in untracked:
        await _report(db, UNTRACKED, path)
    log.info("Processed %d and found %d untracked file(s).", len(paths), len(untracked))


async def missing_files(db: Database, *, refresh_only: bool = False) -> None:
    await ensure_table(db)
    if refresh_only:
        reports = await db.fetchall("SELECT id, path FROM integrity_report WHERE type = %s", (MISSING,))
        await _drop(db, [r["id"] for r in reports if os.path.exists(r["path"])])
        log.info("Refresh complete.")
        return
    log.info("Scanning for missing files...")
    rows = await db.fetchall(
        "SELECT a.id AS asset_id, a.original_path AS path, r.id AS report_id FROM assets a "
        "LEFT JOIN integrity_report r ON r.type = %s AND r.asset_id = a.id WHERE a.deleted_at IS NULL", (MISSING,))
    exists = await asyncio.to_thread(lambda: [os.path.exists(r["path"]) for r in rows])
    await _drop(db, [r["report_id"] for r, e in zip(rows, exists, strict=True) if e and r["report_id"]])
    missing = [r for r, e in zip(rows, exists, strict=True) if not e]
    for row in missing:
        await _report(db, MISSING, row["path"], str(row["asset_id"]))
    log.info("Processed %d and found %d missing file(s).", len(rows), len(missing))


def _sha1(path: str) -> bytes | None:
    digest = hashlib.sha1()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    except FileNotFoundError:
        return None
    return digest.digest()


async def checksum_files(db: Database, *, refresh_only: bool = False) -> None:
    await ensure_table(db)
    if refresh_only:
        reports = await db.fetchall(
            "SELECT r.id, r.path, a.checksum FROM integrity_report r LEFT JOIN assets a ON a.original_path = r.path "
            "WHERE r.type = %s", (CHECKSUM,))
        stale = []
        for r in reports:
            actual = await asyncio.to_thread(_sha1, r["path"])
            if r["checksum"] is None or actual is None or actual == bytes(r["checksum"]):
                stale.append(r["id"])
        await _drop(db, stale)
        log.info("Refresh complete.")
        return
    rows = await db.fetchall(
        "SELECT a.id AS asset_id, a.original_path AS path, a.checksum, r.id AS report_id FROM assets a "
        "LEFT JOIN integrity_report r ON r.asset_id = a.id AND r.type = %s WHERE a.deleted_at IS NULL "
        "ORDER BY a.created_at", (CHECKSUM,))
    for row in rows:
        actual = await asyncio.to_thread(_sha1, row["path"])
        if actual is None or actual == bytes(row["checksum"]):
            await _drop(db, [row["report_id"]] if row["report_id"] else [])
            continue
        log.warning("Failed to process a file: Error: File failed checksum")
        await _report(db, CHECKSUM, row["path"], str(row["asset_id"]))
    log.info("Finished checksum job, covered all assets.")


async def delete_all(db: Database, kind: str) -> None:
    """Act on every report of ``kind``: trash its asset, or remove its untracked file."""
    await ensure_table(db)
    for row in await db.fetchall("SELECT id, path, asset_id FROM integrity_report WHERE type = %s", (kind,)):
        if row["asset_id"]:
            await db.execute("UPDATE assets SET deleted_at = now() WHERE id = %s", (row["asset_id"],))
        else:
            Path(row["path"]).unlink(missing_ok=True)
        await _drop(db, [row["id"]])


# The manual job names (ManualJobName) of the integrity checks: (Immich's JobName, what runs).
def manual_job(name: str, db: Database, media: Path) -> tuple[str, Any] | None:
    table = {
        "integrity-missing-files": ("IntegrityMissingFilesQueueAll", lambda: missing_files(db)),
        "integrity-untracked-files": ("IntegrityUntrackedFilesQueueAll", lambda: untracked_files(db, media)),
        "integrity-checksum-mismatch": ("IntegrityChecksumFiles", lambda: checksum_files(db)),
        "integrity-missing-files-refresh": ("IntegrityMissingFilesQueueAll",
                                            lambda: missing_files(db, refresh_only=True)),
        "integrity-untracked-files-refresh": ("IntegrityUntrackedFilesQueueAll",
                                              lambda: untracked_files(db, media, refresh_only=True)),
        "integrity-checksum-mismatch-refresh": ("IntegrityChecksumFiles",
                                                lambda: checksum_files(db, refresh_only=True)),
        "integrity-missing-files-delete-all": ("IntegrityDeleteReportType", lambda: delete_all(db, MISSING)),
        "integrity-untracked-files-delete-all": ("IntegrityDeleteReportType", lambda: delete_all(db, UNTRACKED)),
        "integrity-checksum-mismatch-delete-all": ("IntegrityDeleteReportType", lambda: delete_all(db, CHECKSUM)),
    }
    return table.get(name)


def queue_manual(request: web.Request, name: str) -> bool:
    st = state(request)
    found = manual_job(name, st.db, st.settings.media_location)
    if found is None:
        return False
    job_name, run = found
    jobs.run_job(st, QUEUE, run(), job_name)
    return True


# ---- endpoints ---------------------------------------------------------------------------------------------------


async def summary(request: web.Request) -> web.Response:
    await caller(request, "maintenance", admin=True)
    db = state(request).db
    await ensure_table(db)
    counts = {r["type"]: r["count"] for r in await db.fetchall(
        "SELECT type, count(*) AS count FROM integrity_report GROUP BY type")}
    return json_response({kind: int(counts.get(kind, 0)) for kind in TYPES})


def _report_query(query: Any) -> tuple[str, str | None, int]:
    issues = Issues()
    kind = query.get("type")
    if kind not in TYPES:
        if kind is None:
            issues.invalid_type(["type"], "string", None, missing=True)
        else:
            issues.invalid_value(["type"], TYPES)
    limit = DEFAULT_LIMIT
    if "limit" in query:
        raw = query["limit"]
        if not raw.isdigit() or int(raw) < 1:
            issues.too_small(["limit"], 1, origin="number")
        else:
            limit = int(raw)
    cursor = query.get("cursor")
    issues.raise_if_any()
    if cursor is not None and not ANY_UUID.match(cursor):
        raise ApiError(500, "Internal server error")  # Postgres refuses it as a uuid
    return str(kind), cursor, limit


async def report(request: web.Request) -> web.Response:
    await caller(request, "maintenance", admin=True)
    kind, cursor, limit = _report_query(request.query)
    db = state(request).db
    await ensure_table(db)
    sql = "SELECT id, type, path, asset_id, file_asset_id, created_at FROM integrity_report WHERE type = %s"
    params: list[Any] = [kind]
    if cursor is not None:
        sql += " AND id <= %s"
        params.append(cursor)
    rows = await db.fetchall(sql + " ORDER BY id DESC LIMIT %s", (*params, limit + 1))
    items = [{"id": str(r["id"]), "type": r["type"], "path": r["path"],
              "assetId": str(r["asset_id"]) if r["asset_id"] else None,
              "fileAssetId": str(r["file_asset_id"]) if r["file_asset_id"] else None,
              "createdAt": r["created_at"].isoformat().replace("+00:00", "Z")} for r in rows[:limit]]
    body: dict[str, Any] = {"items": items}
    if len(rows) > limit:
        body["nextCursor"] = str(rows[limit]["id"])
    return json_response(body)


async def report_csv(request: web.Request) -> web.Response:
    await caller(request, "maintenance", admin=True)
    kind = request.match_info["type"]
    if kind not in TYPES:
        issues = Issues()
        issues.invalid_value(["type"], TYPES)
        issues.raise_if_any()
    db = state(request).db
    await ensure_table(db)
    out = io.StringIO()
    out.write("id,type,assetId,fileAssetId,path\n")
    for r in await db.fetchall("SELECT * FROM integrity_report WHERE type = %s ORDER BY created_at DESC", (kind,)):
        path = r["path"].replace('"', '""')
        asset, file_asset = (str(v) if v else "null" for v in (r["asset_id"], r["file_asset_id"]))
        out.write(f'{r["id"]},{r["type"]},{asset},{file_asset},"{path}"\n')
    return web.Response(body=out.getvalue().encode(), content_type="application/octet-stream")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/admin/integrity/summary", summary)
    app.router.add_get("/api/admin/integrity/report", report)
    app.router.add_get("/api/admin/integrity/report/{type}/csv", report_csv)
