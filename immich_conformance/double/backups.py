"""Immich's database backups (``DatabaseBackupService``, v3.0.3): written, listed, uploaded, downloaded, deleted.

A backup is ``pg_dump --clean --if-exists`` of the server's own database piped through ``gzip --rsyncable`` into
``<media>/backups/immich-db-backup-<yyyyLLdd'T'HHmmss>-v<version>-pg<postgres version>.sql.gz`` (written as
``….sql.gz.tmp`` and renamed when complete). The ``DatabaseBackup`` job (queue ``backupDatabase``, queued by
``POST /api/jobs {"name": "backup-database"}``) writes one, then keeps the newest ``keepLastAmount`` routine backups
and removes failed ``.tmp`` ones. Postgres outside 14-18 refuses the backup, as Immich does.

The backup config is Immich's default (``enabled``, ``0 02 * * *``, keep 14) or ``backup.database`` of the JSON file
named by ``IMMICH_CONFIG_FILE`` (the double has no ``/api/system-config``): while the server runs (not in maintenance)
the job is queued at every time the cron expression names, in the server's local time.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from aiohttp import BodyPartReader, web
from croniter import croniter

from immich_conformance.double import jobs
from immich_conformance.double.database import Database
from immich_conformance.double.http_api import caller, json_body, json_response, state
from immich_conformance.double.settings import Settings
from immich_conformance.double.state import STATE, DoubleState
from immich_conformance.double.validation import ApiError, Reader

log = logging.getLogger("immich.DatabaseBackupService")

BACKUPS_FOLDER = "backups"
BACKUP_QUEUE = "backupDatabase"
BACKUP_JOB = "DatabaseBackup"
DEFAULT_CONFIG = {"enabled": True, "cronExpression": "0 02 * * *", "keepLastAmount": 14}
SUPPORTED_POSTGRES = range(14, 19)  # '>=14.0.0 <19.0.0'

VALID_NAME = re.compile(r"^[\d\w\-.]+\.sql(?:\.gz)?$")
ROUTINE_NAME = (re.compile(r"^immich-db-backup-\d+\.sql\.gz$"),
                re.compile(r"^immich-db-backup-\d{8}T\d{6}-v.*-pg.*\.sql\.gz$"))
FAILED_NAME = re.compile(r"^immich-db-backup-.*\.sql\.gz\.tmp$")
FILENAME_PARAM = re.compile(r"^[a-zA-Z0-9_\-.]+$")
INVALID_NAME = "Invalid backup name!"
SCHEDULE = web.AppKey("backup_schedule", asyncio.Task)


class UnsupportedPostgres(RuntimeError):
    def __init__(self, version: str) -> None:
        super().__init__(f"Unsupported PostgreSQL version: {version}")


def is_valid_name(filename: str) -> bool:
    return VALID_NAME.match(filename) is not None


def is_routine_name(filename: str) -> bool:
    return any(p.match(filename) for p in ROUTINE_NAME)


def backup_filename(when: datetime, server_version: str, postgres_version: str, prefix: str = "") -> str:
    """Immich's name: ``immich-db-backup-20250729T114018-v1.136.0-pg14.17.sql.gz`` (version without its ``v``)."""
    return (f"{prefix}immich-db-backup-{when.strftime('%Y%m%dT%H%M%S')}-v{server_version.lstrip('v')}"
            f"-pg{postgres_version.split(' ')[0]}.sql.gz")


def folder(settings: Settings) -> Path:
    return settings.media_location / BACKUPS_FOLDER


def backup_config() -> dict[str, Any]:
    """``backup.database`` of the system config: Immich's defaults, or as the IMMICH_CONFIG_FILE sets it."""
    config = dict(DEFAULT_CONFIG)
    path = os.environ.get("IMMICH_CONFIG_FILE")
    if path:
        try:
            loaded = json.loads(Path(path).read_text())
            config.update(loaded.get("backup", {}).get("database", {}))
        except (OSError, ValueError, AttributeError) as exc:
            log.error("Unable to read the config file %s: %s", path, exc)
    return config


# ---- the postgres client programs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PgLaunch:
    argv: list[str]
    env: dict[str, str]
    username: str
    version: str
    major: int


def _client_binary(name: str, major: int) -> str:
    """Immich runs ``/usr/lib/postgresql/<server major>/bin/<name>``; elsewhere the one on PATH."""
    own = Path(f"/usr/lib/postgresql/{major}/bin/{name}")
    return str(own) if own.is_file() else (shutil.which(name) or name)


async def postgres_version(db: Database) -> str:
    row = await db.fetchone("SHOW server_version")
    assert row is not None
    return str(row["server_version"])


async def launch_arguments(db: Database, settings: Settings, program: str, *,
                           single_transaction: bool = False) -> PgLaunch:
    """Immich's ``buildPostgresLaunchArguments`` for pg_dump and psql."""
    version = await postgres_version(db)
    found = re.match(r"(\d+)", version)
    major = int(found.group(1)) if found else 0
    info = settings.db_conninfo
    args: list[str] = []
    if "conninfo" in info:
        url = info["conninfo"]
        parts = urlsplit(url)
        username = parts.username or "postgres"
        password = parts.password or ""
        if program != "pg_dump":
            args.append("--dbname")
        args.append(url)
    else:
        username, password = info["user"], info["password"]
        args += ["--username", username, "--host", info["host"], "--port", str(info["port"])]
        if program == "psql":
            args.append("--dbname")
        args.append(info["dbname"])
    if program == "pg_dump":
        args += ["--clean", "--if-exists"]
    else:
        if single_transaction:
            args += ["--single-transaction", "--set", "ON_ERROR_STOP=on"]
        args += ["--echo-all", "--output=/dev/null"]
    if major not in SUPPORTED_POSTGRES:
        log.error("Database Restore Failure: Unsupported PostgreSQL version: %s", version)
        raise UnsupportedPostgres(version)
    env = {"PATH": os.environ.get("PATH", ""), "PGPASSWORD": password}
    return PgLaunch([_client_binary(program, major), *args], env, username, version, major)


def _dump_to(launch: PgLaunch, target: Path) -> None:
    with target.open("wb") as out:
        dump = subprocess.Popen(launch.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=launch.env)
        assert dump.stdout is not None
        gzip = subprocess.Popen(["gzip", "--rsyncable"], stdin=dump.stdout, stdout=out, stderr=subprocess.PIPE)
        dump.stdout.close()
        gzip_err = gzip.communicate()[1]
        dump_err = dump.communicate()[1]
    if dump.returncode != 0:
        raise RuntimeError(f"pg_dump non-zero exit code ({dump.returncode})\n{dump_err.decode(errors='replace')}")
    if gzip.returncode != 0:
        raise RuntimeError(f"gzip non-zero exit code ({gzip.returncode})\n{gzip_err.decode(errors='replace')}")


async def create_backup(db: Database, settings: Settings, prefix: str = "") -> Path:
    """Write a backup as Immich's ``createDatabaseBackup``: the path of the finished file."""
    log.debug("Database Backup Started")
    launch = await launch_arguments(db, settings, "pg_dump")
    log.info("Database Backup Starting. Database Version: %s", launch.major)
    path = folder(settings) / backup_filename(datetime.now(), str(settings.version), launch.version, prefix)
    temporary = path.with_name(path.name + ".tmp")
    try:
        await asyncio.to_thread(_dump_to, launch, temporary)
        temporary.rename(path)
    except Exception as exc:
        log.error("Database Backup Failure: %s", exc)
        try:
            temporary.unlink()
        except OSError as unlink_error:
            log.error("Failed to delete failed backup file: %s", unlink_error)
        raise
    log.info("Database Backup Success")
    return path


def cleanup(settings: Settings, keep_last: int) -> list[str]:
    """Keep the newest ``keep_last`` routine backups; remove the rest and every failed (``.tmp``) one."""
    names = os.listdir(folder(settings))
    routine = sorted((n for n in names if is_routine_name(n)), reverse=True)
    doomed = routine[keep_last:] + [n for n in names if FAILED_NAME.match(n)]
    for name in doomed:
        (folder(settings) / name).unlink(missing_ok=True)
    log.debug("Database Backup Cleanup Finished, deleted %d backups", len(doomed))
    return doomed


async def backup_job(db: Database, settings: Settings) -> None:
    """The ``DatabaseBackup`` job: a backup, then the cleanup (skipped, job failed, on an unsupported Postgres)."""
    try:
        await create_backup(db, settings)
    except UnsupportedPostgres:
        return
    cleanup(settings, int(backup_config()["keepLastAmount"]))


def queue_backup(request: web.Request) -> None:
    st = state(request)
    jobs.run_job(st, BACKUP_QUEUE, backup_job(st.db, st.settings), BACKUP_JOB)


async def _on_schedule(st: DoubleState, expression: str) -> None:
    """Immich's ``backupDatabase`` cron: the job queued at every time the expression names (server local time)."""
    times = croniter(expression, datetime.now(), second_at_beginning=True)
    while True:
        due = times.get_next(datetime)
        await asyncio.sleep(max(0.0, (due - datetime.now()).total_seconds()))
        jobs.run_job(st, BACKUP_QUEUE, backup_job(st.db, st.settings), BACKUP_JOB)


def start_schedule(app: web.Application) -> None:
    """Schedule the backup job as the config says (none when ``enabled`` is false); replaces a running schedule."""
    stop_schedule(app)
    config = backup_config()
    if not config.get("enabled"):
        return
    expression = str(config["cronExpression"])
    if not croniter.is_valid(expression, second_at_beginning=True):  # as node's cron: 6 fields start with seconds
        log.error("Invalid cron expression for the database backup: %s", expression)
        return
    app[SCHEDULE] = asyncio.get_running_loop().create_task(_on_schedule(app[STATE], expression))


def stop_schedule(app: web.Application) -> None:
    task = app.get(SCHEDULE)
    if task is not None:
        task.cancel()
        app.pop(SCHEDULE)


# ---- the endpoints (admin; also served by the maintenance worker, see ``maintenance``) ----------------------------


def list_body(settings: Settings) -> dict[str, Any]:
    names = [n for n in os.listdir(folder(settings)) if is_valid_name(n)]
    # Immich sorts uploaded and routine backups apart (uploaded last), then reverses.
    plain = sorted(n for n in names if not n.startswith("uploaded-"))
    uploaded = sorted(n for n in names if n.startswith("uploaded-"))
    ordered = list(reversed(plain + uploaded))
    zone = os.environ.get("TZ") or "UTC"  # luxon's zone name of the server (containers run in UTC unless TZ is set)
    return {"backups": [{"filename": n, "filesize": (folder(settings) / n).stat().st_size, "timezone": zone}
                        for n in ordered]}


def checked_filename(filename: str) -> str:
    """Immich's FilenameParamDto (400 Validation failed on other characters)."""
    if not FILENAME_PARAM.match(filename):
        raise ApiError(400, "Validation failed", errors=[{"code": "invalid_format", "format": "regex",
                                                           "path": ["filename"],
                                                           "message": "Filename contains invalid characters"}])
    return filename


def download_response(settings: Settings, filename: str) -> web.StreamResponse:
    """Immich's sendFile: any failure, an invalid backup name included, ends as 404 Not Found."""
    path = folder(settings) / checked_filename(filename)
    if not is_valid_name(filename) or not path.is_file() or not os.access(path, os.R_OK):
        raise ApiError(404, "Not Found")
    kind = "application/gzip" if filename.endswith(".gz") else "application/sql"
    return web.FileResponse(path, headers={"Content-Type": kind, "Cache-Control": "private, no-cache, no-transform",
                                           "Content-Disposition": f"inline; filename*=UTF-8''{quote(filename)}"})


async def receive_upload(request: web.Request, settings: Settings) -> None:
    """``POST …/upload`` (multipart, part ``file``): kept as ``uploaded-<name>`` (an existing one replaced)."""
    if not request.content_type.startswith("multipart/"):
        raise ApiError(500, "Internal server error")  # multer gives no file: Immich reads a name of undefined
    reader = await request.multipart()
    async for part in reader:
        if not isinstance(part, BodyPartReader) or part.name != "file" or part.filename is None:
            await part.release()
            continue
        name = os.path.basename(part.filename)
        if not is_valid_name(name):
            await part.release()
            raise ApiError(400, INVALID_NAME)
        target = folder(settings) / f"uploaded-{name}"
        with target.open("wb") as out:
            while chunk := await part.read_chunk():
                out.write(chunk)
        return
    raise ApiError(500, "Internal server error")


async def delete_named(request: web.Request, settings: Settings) -> None:
    reader = Reader(await json_body(request))
    names = reader.array("backups") or []
    for index, item in enumerate(names):
        if not isinstance(item, str):
            reader.issues.invalid_type(["backups", index], "string", item)
    reader.issues.raise_if_any()
    if any(not is_valid_name(n) for n in names):
        raise ApiError(400, INVALID_NAME)
    for name in names:
        try:
            (folder(settings) / name).unlink()
        except FileNotFoundError:
            raise ApiError(500, "Internal server error") from None


async def list_backups(request: web.Request) -> web.Response:
    await caller(request, "maintenance", admin=True)
    return json_response(list_body(state(request).settings))


async def download_backup(request: web.Request) -> web.StreamResponse:
    await caller(request, "backup.download", admin=True)
    return download_response(state(request).settings, request.match_info["filename"])


async def delete_backups(request: web.Request) -> web.Response:
    await caller(request, "backup.delete", admin=True)
    await delete_named(request, state(request).settings)
    return web.Response(status=200)


async def upload_backup(request: web.Request) -> web.Response:
    await caller(request, "backup.upload", admin=True)
    await receive_upload(request, state(request).settings)
    return web.Response(status=201)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/admin/database-backups", list_backups)
    app.router.add_delete("/api/admin/database-backups", delete_backups)
    app.router.add_post("/api/admin/database-backups/upload", upload_backup)
    app.router.add_get("/api/admin/database-backups/{filename}", download_backup)
