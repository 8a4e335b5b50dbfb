"""Immich's maintenance mode (v3.0.3: ``MaintenanceService``, the maintenance worker, its controllers).

Outside maintenance: ``GET /api/admin/maintenance/status`` is ``{"active": false, "action": "end"}``;
``POST /api/admin/maintenance`` (admin, ``maintenance``) with an action other than ``end`` stores the maintenance
state in ``system_metadata`` (``maintenance-mode``: a fresh secret and the action), answers 201 with the cookie
``immich_maintenance_token`` (an HS256 JWT of that secret, 4 h) and restarts the server; so does
``POST /api/admin/database-backups/start-restore`` (no authentication; 400 once an admin exists) with
``select_database_restore``. A restart, as Immich's workers exiting with the restart code and its main process
starting them again (inside the same process and container), stops listening for ``RESTART_SECONDS`` (connections are
refused), reconnects to the database and runs the start-up again; a start-up that fails there ends the whole process
with exit code 1, as Immich's main process exits when a worker fails: its platform restarts it, or not.

In maintenance the server is the maintenance worker: only ``/api/server/{config,ping,version}`` (config is just
``{"maintenanceMode": true}``), the database-backup routes and ``/api/admin/maintenance/{status,detect-install,login}``
and ``POST /api/admin/maintenance`` answer; the backup routes and ``POST /api/admin/maintenance`` take the maintenance
cookie only (401 "Missing JWT Token" / "Invalid JWT Token"; API keys and sessions do not work); any other API path is
404, any other page a redirect to ``/maintenance``. The status shows the running action, its ``task`` and
``progress`` (a fraction from 0 to 1, as Immich sends it, although the spec declares an integer) and, to a caller
without the cookie, ``error`` as "Something went wrong, see logs!". ``restore_database`` runs ``restore.restore``
then ends maintenance (restart into the normal server); a failure leaves the server in maintenance with
``task: "error"``. ``end`` ends maintenance.

One module, a little over 400 lines: the maintenance state, the worker's routes and the restart between the two
servers are one state machine, read together against Immich's ``MaintenanceService``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlencode

import jwt
from aiohttp import web

from immich_conformance.double import backups, integrity, manual_jobs, system_metadata
from immich_conformance.double.database import DatabaseUnavailable
from immich_conformance.double.http_api import caller, json_body, json_response, state
from immich_conformance.double.restore import RestoreError, restore
from immich_conformance.double.settings import ServerVersion
from immich_conformance.double.state import STATE
from immich_conformance.double.storage_integrity import MARKER, MEDIA_FOLDERS, StartupError, verify_storage
from immich_conformance.double.validation import ApiError, Reader
from immich_conformance.double.version_history import record_start

log = logging.getLogger("immich.MaintenanceWorkerService")

KEY = "maintenance-mode"
COOKIE = "immich_maintenance_token"
COOKIE_MAX_AGE = 24 * 3600
JWT_SECONDS = 4 * 3600
RESTART_SECONDS = 1.0
RESTORE_FLOW_SINCE = (2, 5, 0)
"""The release that brought the database-backup routes, maintenance mode and the restore flow; before it, a backup
is restored with psql while the server is stopped (Immich's documentation), and these paths are unknown (404)."""
ACTIONS = ("start", "end", "select_database_restore", "restore_database")
PUBLIC_ERROR = "Something went wrong, see logs!"
EXTERNAL_DOMAIN = "https://my.immich.app"


@dataclass
class Maintenance:
    active: bool = False
    secret: str = ""
    status: dict[str, Any] = field(default_factory=lambda: {"active": False, "action": "end"})
    runner: web.AppRunner | None = None
    site: web.TCPSite | None = None
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    stop: asyncio.Event | None = None
    exit_code: int = 0  # what the process exits with once ``stop`` is set

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


MAINTENANCE = web.AppKey("maintenance", Maintenance)


def of(app: web.Application) -> Maintenance:
    return app[MAINTENANCE]


def sign(secret: str, username: str) -> str:
    now = int(time.time())
    return jwt.encode({"username": username, "iat": now, "exp": now + JWT_SECONDS}, secret, algorithm="HS256")


def with_cookie(response: web.Response, request: web.Request, token: str) -> web.Response:
    secure = request.secure or request.headers.get("x-forwarded-proto", "").lower() == "https"
    response.set_cookie(COOKIE, token, path="/", max_age=COOKIE_MAX_AGE, httponly=True, samesite="Lax", secure=secure)
    return response


def _action(body: Any) -> dict[str, Any]:
    reader = Reader(body)
    if not isinstance(body, dict) or "action" not in body:
        reader.issues.invalid_value(["action"], ACTIONS)
    action = reader.choice("action", ACTIONS)
    filename = reader.string("restoreBackupFilename", required=False)
    if action == "restore_database" and not filename:
        reader.issues.custom(["restoreBackupFilename"], "Backup filename is required when action is restore_database")
    reader.issues.raise_if_any()
    dto: dict[str, Any] = {"action": action}
    if filename is not None:
        dto["restoreBackupFilename"] = filename
    return dto


# ---- the normal server's side -------------------------------------------------------------------------------------


async def start_maintenance(request: web.Request, action: dict[str, Any], username: str) -> web.Response:
    st = state(request)
    secret = secrets.token_hex(64)
    await system_metadata.put(st.db, KEY, {"isMaintenanceMode": True, "secret": secret, "action": action})
    logging.getLogger("immich.MaintenanceService").info(
        "Restarting due to event... %s", '{"isMaintenanceMode":true}')
    of(request.app).spawn(restart(request.app))
    return with_cookie(web.Response(status=201), request, sign(secret, username))


async def set_maintenance_mode(request: web.Request) -> web.Response:
    me = await caller(request, "maintenance", admin=True)
    dto = _action(await json_body(request))
    if dto["action"] == "end":
        return web.Response(status=201)
    return await start_maintenance(request, dto, me.user["name"])


async def start_restore_flow(request: web.Request) -> web.Response:
    if await state(request).db.fetchone("SELECT 1 AS found FROM users WHERE is_admin AND deleted_at IS NULL"):
        raise ApiError(400, "The server already has an admin")
    return await start_maintenance(request, {"action": "select_database_restore"}, "admin")


async def normal_status(request: web.Request) -> web.Response:
    return json_response({"active": False, "action": "end"})


def detect_body(request: web.Request) -> dict[str, Any]:
    media = state(request).settings.media_location
    found = []
    for name in MEDIA_FOLDERS:
        folder, readable, writable = media / name, False, False
        try:
            (folder / MARKER).read_bytes()
            readable = True
            (folder / MARKER).write_bytes(str(int(time.time() * 1000)).encode())
            writable = True
        except OSError:
            pass
        files = [f for f in folder.iterdir() if f.name != MARKER] if folder.is_dir() else []
        found.append({"folder": name, "readable": readable, "writable": writable, "files": len(files)})
    return {"storage": found}


async def detect_install(request: web.Request) -> web.Response:
    await caller(request, "maintenance", admin=True)
    return json_response(detect_body(request))


async def normal_login(request: web.Request) -> web.Response:
    raise ApiError(400, "Not in maintenance mode")


# ---- restarts -----------------------------------------------------------------------------------------------------


async def restart(app: web.Application) -> None:
    """Immich exits and its container starts it again: down for a moment, then the start-up on the database."""
    m, st = of(app), app[STATE]
    await asyncio.sleep(0.05)  # the answer that asked for it goes out first
    if m.site is not None:
        await m.site.stop()
        m.site = None
    backups.stop_schedule(app)
    await st.abandon()
    await st.db.close()
    await asyncio.sleep(RESTART_SECONDS)
    try:
        await st.db.reopen(st.settings.db_wait_seconds)
        await boot(app)
    except (DatabaseUnavailable, StartupError) as exc:
        logging.getLogger("immich.Bootstrap").error("%s", exc)
        m.exit_code = 1  # Immich's main process exits when a worker fails to start
        if m.stop is not None:
            m.stop.set()
        return
    if m.runner is not None:
        m.site = web.TCPSite(m.runner, st.settings.host, st.settings.port, reuse_address=True)
        await m.site.start()
        logging.getLogger("immich.Bootstrap").info("Immich Server is listening on http://%s:%s [%s] [production]",
                                                   st.settings.host, st.settings.port, st.settings.version)


async def boot(app: web.Application) -> None:
    """At start: the maintenance worker when the database says so (and its pending action), else the server's
    start-up checks."""
    m, st = of(app), app[STATE]
    saved = await system_metadata.get(st.db, KEY) or {"isMaintenanceMode": False}
    if not saved.get("isMaintenanceMode"):
        if m.runner is not None:  # a restart: the start-up the first start already ran in app.serve
            await verify_storage(st.db, st.settings.media_location,
                                 ignore_mount_check_errors=st.settings.ignore_mount_check_errors)
            await record_start(st.db, st.settings.version, st.settings.fault)
        m.active, m.secret = False, ""
        m.status = {"active": False, "action": "end"}
        backups.start_schedule(app)
        return
    action = saved.get("action") or {"action": "start"}
    m.active, m.secret = True, str(saved.get("secret", ""))
    m.status = {"active": True, "action": action.get("action", "start")}
    log.info("\n\n🚧 Immich is in maintenance mode, you can log in using the following URL:\n%s/maintenance?token=%s\n",
             EXTERNAL_DOMAIN, sign(m.secret, "immich-admin"))
    m.spawn(run_action(app, action))


def attach(app: web.Application, runner: web.AppRunner, site: web.TCPSite, stop: asyncio.Event) -> None:
    of(app).runner, of(app).site, of(app).stop = runner, site, stop


# ---- the maintenance worker ---------------------------------------------------------------------------------------


def set_status(app: web.Application, status: dict[str, Any]) -> None:
    of(app).status = status


async def run_action(app: web.Application, action: dict[str, Any]) -> None:
    name = action.get("action")
    if name == "end":
        await end_maintenance(app)
    elif name == "restore_database":
        await run_restore(app, action)


async def end_maintenance(app: web.Application) -> None:
    await system_metadata.put(app[STATE].db, KEY, {"isMaintenanceMode": False})
    await restart(app)


async def run_restore(app: web.Application, action: dict[str, Any]) -> None:
    m, st = of(app), app[STATE]
    log.info("Running maintenance action %s", action["action"])
    await system_metadata.put(st.db, KEY, {"isMaintenanceMode": True, "secret": m.secret,
                                           "action": {"action": "start"}})
    try:
        filename = action.get("restoreBackupFilename")
        if not filename:
            raise RestoreError("Error: Expected restoreBackupFilename but it's missing!")
        set_status(app, {"active": True, "action": "restore_database", "task": "ready", "progress": 0})
        await restore(st.db, st.settings, filename, lambda task, progress: set_status(
            app, {"active": True, "action": "restore_database", "progress": progress, "task": task}))
    except Exception as exc:  # noqa: BLE001 - Immich reports any failure in the status
        log.error("Encountered error running action: %s", exc)
        set_status(app, {"active": True, "action": "restore_database", "task": "error", "error": str(exc)})
        return
    set_status(app, {"active": True, "action": "end"})
    await end_maintenance(app)


def _cookie(request: web.Request) -> str | None:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(request.headers.get("Cookie", ""))
    except Exception:  # noqa: BLE001 - a malformed cookie header is no cookie
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel else None


def login(m: Maintenance, token: str | None) -> dict[str, Any]:
    if not token:
        raise ApiError(401, "Missing JWT Token")
    try:
        payload = jwt.decode(token, m.secret, algorithms=["HS256"])
    except jwt.PyJWTError:
        raise ApiError(401, "Invalid JWT Token") from None
    return {"username": payload.get("username", "")}


async def worker_status(request: web.Request) -> web.Response:
    m = of(request.app)
    try:
        login(m, _cookie(request))
        return json_response(m.status)
    except ApiError:
        public = dict(m.status)
        if public.get("error"):
            public["error"] = PUBLIC_ERROR
        return json_response(public)


async def worker_login(request: web.Request) -> web.Response:
    body = await json_body(request)
    token = body.get("token") if isinstance(body, dict) and isinstance(body.get("token"), str) else _cookie(request)
    auth = login(of(request.app), token)
    assert token is not None
    return with_cookie(json_response(auth, status=201), request, token)


async def worker_set_action(request: web.Request) -> web.Response:
    m = of(request.app)
    login(m, _cookie(request))
    dto = _action(await json_body(request))
    set_status(request.app, {"active": True, "action": dto["action"]})
    m.spawn(run_action(request.app, dto))
    return web.Response(status=201)


def _guarded(handler: Any) -> Any:
    async def guarded(request: web.Request) -> web.StreamResponse:
        login(of(request.app), _cookie(request))
        return await handler(request)
    return guarded


async def _list(request: web.Request) -> web.Response:
    return json_response(backups.list_body(state(request).settings))


async def _download(request: web.Request) -> web.StreamResponse:
    return backups.download_response(state(request).settings, request.path[len(DOWNLOAD_PREFIX):])


async def _delete(request: web.Request) -> web.Response:
    await backups.delete_named(request, state(request).settings)
    return web.Response(status=200)


async def _upload(request: web.Request) -> web.Response:
    await backups.receive_upload(request, state(request).settings)
    return web.Response(status=201)


async def _config(request: web.Request) -> web.Response:
    return json_response({"maintenanceMode": True})


async def _ping(request: web.Request) -> web.Response:
    return json_response({"res": "pong"})


async def _version(request: web.Request) -> web.Response:
    return json_response(state(request).settings.version.as_dto())


async def _detect(request: web.Request) -> web.Response:
    return json_response(detect_body(request))


WORKER_ROUTES: dict[tuple[str, str], Any] = {
    ("GET", "/api/server/config"): _config,
    ("GET", "/api/server/ping"): _ping,
    ("GET", "/api/server/version"): _version,
    ("GET", "/api/admin/database-backups"): _guarded(_list),
    ("DELETE", "/api/admin/database-backups"): _guarded(_delete),
    ("POST", "/api/admin/database-backups/upload"): _guarded(_upload),
    ("GET", "/api/admin/maintenance/status"): worker_status,
    ("GET", "/api/admin/maintenance/detect-install"): _detect,
    ("POST", "/api/admin/maintenance/login"): worker_login,
    ("POST", "/api/admin/maintenance"): _guarded(worker_set_action),
}
DOWNLOAD_PREFIX = "/api/admin/database-backups/"
NOT_THE_WEB_APP = ("/.well-known/immich", "/custom.css", "/favicon.ico")  # Immich's excludePaths: left to Nest


@web.middleware
async def gate(request: web.Request, handler: Any) -> web.StreamResponse:
    """In maintenance the maintenance worker answers instead of the server."""
    m = request.app.get(MAINTENANCE)
    if m is None or not m.active:
        return await handler(request)
    path = request.path.rstrip("/") or "/"
    worker = WORKER_ROUTES.get((request.method, path))
    if worker is None and request.method == "GET" and path.startswith(DOWNLOAD_PREFIX) and \
            "/" not in path[len(DOWNLOAD_PREFIX):]:
        worker = _guarded(_download)
    if worker is not None:
        return await worker(request)
    if path.startswith("/api") or path in NOT_THE_WEB_APP:
        raise ApiError(404, f"Cannot {request.method} {request.raw_path}")
    if request.method != "GET":
        raise ApiError(404, f"Cannot {request.method} {request.raw_path}")
    if path.startswith("/maintenance"):
        return web.Response(text="<!doctype html><title>Immich</title>", content_type="text/html",
                            headers={"Cache-Control": "no-store"})
    location = f"/maintenance?{urlencode({'continue': request.path})}"
    return web.Response(status=302, text=f"Found. Redirecting to {location}", headers={"Location": location})


def add_routes(app: web.Application, version: ServerVersion) -> None:
    """The routes of backups, maintenance, integrity and manual jobs, as far as release ``version`` has them, and
    the maintenance state."""
    app[MAINTENANCE] = Maintenance()
    if version.at_least(integrity.SINCE):
        integrity.add_routes(app)
    manual_jobs.add_routes(app)
    if not version.at_least(RESTORE_FLOW_SINCE):
        return
    backups.add_routes(app)
    app.router.add_get("/api/admin/maintenance/status", normal_status)
    app.router.add_get("/api/admin/maintenance/detect-install", detect_install)
    app.router.add_post("/api/admin/maintenance/login", normal_login)
    app.router.add_post("/api/admin/maintenance", set_maintenance_mode)
    app.router.add_post("/api/admin/database-backups/start-restore", start_restore_flow)
