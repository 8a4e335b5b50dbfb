"""Wiring: the aiohttp application (middleware, routes, socket.io) and the server's start and stop."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import secrets
import signal
import sys
import time
from datetime import datetime
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from immich_conformance.double import jobs, maintenance
from immich_conformance.double.database import Database, DatabaseUnavailable
from immich_conformance.double.express import add_powered_by, express_middleware, is_engine_request
from immich_conformance.double.http_api import REFUSED_BY_GUARD, add_routes, json_response
from immich_conformance.double.realtime import SOCKET_PATH, Realtime
from immich_conformance.double.settings import VERBOSE, ConfigError, LogLevelError, Settings
from immich_conformance.double.state import STATE, DoubleState
from immich_conformance.double.storage_integrity import StartupError, verify_storage
from immich_conformance.double.validation import ApiError
from immich_conformance.double.version_history import record_start

CORRELATION_HEADER = "X-Correlation-ID"
CORRELATION_KEY = web.RequestKey("correlation_id", str)
JSON_BODY_LIMIT = 10 * 1024 * 1024  # Express' json parser as Immich sets it ("10mb")
WELL_KNOWN = "/.well-known/immich"
# What a browser gets for a non-API GET (Immich serves its web app's index.html there).
WEB_APP_HTML = ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Immich</title></head>"
                "<body><div id=\"app\"></div></body></html>\n")

log = logging.getLogger("immich.Api")
boot_log = logging.getLogger("immich.Bootstrap")


class NestFormatter(logging.Formatter):
    """Log lines in the layout of Immich's (NestJS) logger, in its colours unless ``NO_COLOR`` is set, as Immich's
    logger has them (whether or not the output is a terminal): the ``[Nest] <pid>  - `` prefix, the level and the
    message in the level's colour, the context in yellow."""

    LEVELS = {"VERBOSE": "VERBOSE", "DEBUG": "DEBUG", "INFO": "LOG", "WARNING": "WARN", "ERROR": "ERROR",
              "CRITICAL": "FATAL"}
    # Nest's ConsoleLogger colours by level (cyanBright, magentaBright, green, yellow, red, bold): start, end
    COLOURS = {"VERBOSE": ("\x1b[96m", "\x1b[39m"), "DEBUG": ("\x1b[95m", "\x1b[39m"), "LOG": ("\x1b[32m", "\x1b[39m"),
               "WARN": ("\x1b[33m", "\x1b[39m"), "ERROR": ("\x1b[31m", "\x1b[39m"), "FATAL": ("\x1b[1m", "\x1b[0m")}
    CONTEXT_COLOUR = ("\x1b[33m", "\x1b[39m")

    def __init__(self, *, colour: bool = True) -> None:
        super().__init__()
        self.colour = colour

    def format(self, record: logging.LogRecord) -> str:
        at = datetime.fromtimestamp(record.created)  # as Intl.DateTimeFormat gives it: 12/04/2026, 1:02:03 PM
        when = f"{at:%m/%d/%Y}, {at.hour % 12 or 12}:{at:%M:%S %p}"
        level = self.LEVELS.get(record.levelname, record.levelname)
        context = record.name.removeprefix("immich.")
        start, end = self.COLOURS.get(level, ("", "")) if self.colour else ("", "")
        ctx_start, ctx_end = self.CONTEXT_COLOUR if self.colour else ("", "")
        line = (f"{start}[Nest] {record.process}  - {end}{when} {start}{level:>7}{end} "
                f"{ctx_start}[{context}] {ctx_end}{start}{record.getMessage()}{end}")
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_logging() -> None:
    logging.addLevelName(VERBOSE, "VERBOSE")
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(NestFormatter(colour=not os.environ.get("NO_COLOR")))
    root = logging.getLogger("immich")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    root.propagate = False


def correlation_id(request: web.BaseRequest) -> str:
    own = request.headers.get("x-correlation-id")
    return own if own else secrets.token_hex(4)


def is_api_path(path: str) -> bool:
    """A path Immich's API (NestJS) serves, so its request logger sees it: /api... (socket.io aside) and
    /.well-known/immich. Any other GET is the web app's (served before Nest's routing, never logged)."""
    if path.startswith(SOCKET_PATH):
        return False
    return path.startswith("/api") or path == WELL_KNOWN


async def too_large_json(request: web.Request) -> bool:
    """Read a JSON body as Express' json parser does, before routing and authentication: whether it exceeds 10 MB."""
    if request.content_type != "application/json" or not request.body_exists:
        return False
    if request.content_length is not None and request.content_length > JSON_BODY_LIMIT:
        return True
    try:
        await request.read()  # kept by aiohttp for the handler
    except web.HTTPRequestEntityTooLarge:
        return True
    return False


def log_http_exception(correlation: str, status: int, body: dict[str, Any]) -> None:
    """Immich's exception filter: ``HttpException(<status>): <Nest's error response>`` at debug, without the path."""
    nest = {**body, "error": HTTPStatus(status).phrase, "statusCode": status}
    logging.getLogger(f"immich.Api:GlobalExceptionFilter~{correlation}").debug(
        "HttpException(%s): %s", status, json.dumps(nest, separators=(",", ":")))


@web.middleware
async def api_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request[CORRELATION_KEY] = correlation = correlation_id(request)
    started = time.monotonic()
    status = 0
    # Immich's request logger (an interceptor) runs only for a matched API route whose guard let the request in.
    logged = is_api_path(request.path)
    try:
        if await too_large_json(request):
            logged = False
            status = 500
            logging.getLogger(f"immich.Api:GlobalExceptionFilter~{correlation}").error(
                "Unknown error: PayloadTooLargeError: request entity too large")
            return json_response({"message": "Internal server error"}, status=500)
        response = await handler(request)
        status = response.status
        return response
    except ApiError as exc:
        status = exc.status
        logged = logged and not request.get(REFUSED_BY_GUARD, False)
        log_http_exception(correlation, exc.status, exc.body)
        return json_response(exc.body, status=exc.status)
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed):
        logged = False
        if request.method == "GET" and not request.path.startswith("/api"):
            status = 200
            return web.Response(text=WEB_APP_HTML, content_type="text/html")  # the web app, for any other GET
        status = 404
        body = {"message": f"Cannot {request.method} {request.raw_path}"}
        log_http_exception(correlation, 404, body)
        return json_response(body, status=404)
    except web.HTTPException as exc:
        status = exc.status
        if exc.status < 400:
            raise
        return json_response({"message": exc.reason}, status=exc.status)
    except ConnectionError as exc:
        status = 499  # the client went away mid-request; what it sent was cleaned up, nothing can be answered
        log.warning("Client disconnected during %s %s: %s", request.method, request.path, exc)
        return web.Response(status=400)
    except asyncio.CancelledError:
        status = 499
        raise
    except Exception:
        status = 500
        log.exception("Unhandled error on %s %s", request.method, request.path)
        return json_response({"message": "Internal server error"}, status=500)
    finally:
        if logged:
            elapsed = (time.monotonic() - started) * 1000
            # Immich logs Express's req.url (the path with its query string), at debug level only.
            logging.getLogger(f"immich.Api:LoggingInterceptor~{correlation}").debug(
                "%s %s %s %.2fms %s", request.method, request.path_qs, status, elapsed, request.remote
            )


async def add_correlation_header(request: web.Request, response: web.StreamResponse) -> None:
    """Immich's correlation id, on what its API's middleware answers: not ``/.well-known/immich`` nor engine.io's
    requests (the socket's 101 included)."""
    if request.path == WELL_KNOWN or is_engine_request(request):
        return
    if CORRELATION_HEADER not in response.headers:
        try:
            value = request[CORRELATION_KEY]
        except KeyError:
            value = correlation_id(request)
        response.headers[CORRELATION_HEADER] = value


def build_app(state: DoubleState) -> web.Application:
    express = express_middleware(lambda sid: sid in state.realtime.sio.eio.sockets)
    app = web.Application(middlewares=[express, api_middleware, maintenance.gate], client_max_size=JSON_BODY_LIMIT)
    app[STATE] = state
    app.on_response_prepare.append(add_correlation_header)
    app.on_response_prepare.append(add_powered_by)
    state.realtime.attach(app)
    add_routes(app)
    jobs.add_routes(app)
    maintenance.add_routes(app, state.settings.version)  # backups, maintenance mode, integrity, manual jobs
    return app


async def serve(settings: Settings) -> int:
    db = Database(settings.db_conninfo, where=settings.db_where)
    boot_log.info("Connecting to the database at %s (Redis at %s is not used)", settings.db_where,
                  settings.redis_where)
    try:
        await db.open(settings.db_wait_seconds)
        await verify_storage(db, settings.media_location,
                             ignore_mount_check_errors=settings.ignore_mount_check_errors)
        await record_start(db, settings.version, settings.fault)
    except (DatabaseUnavailable, StartupError) as exc:
        logging.getLogger(f"immich.{exc.context}" if isinstance(exc, StartupError) else "immich.Database").error(
            "%s", exc)
        await db.close()
        return 1

    realtime = Realtime(lambda: db, settings.version)
    state = DoubleState(settings=settings, db=db, realtime=realtime, job_delay=settings.job_delay)
    runner = web.AppRunner(build_app(state), handle_signals=False, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    await maintenance.boot(runner.app)  # the maintenance worker instead, when the database says so
    site = web.TCPSite(runner, settings.host, settings.port, reuse_address=True)
    try:
        await site.start()
    except OSError as exc:
        boot_log.error("Cannot listen on %s:%s: %s", settings.host, settings.port, exc.strerror)
        await runner.cleanup()
        await db.close()
        return 1
    stop = asyncio.Event()
    app = runner.app
    maintenance.attach(app, runner, site, stop)
    boot_log.info("Immich Server is listening on http://%s:%s [%s] [production]", settings.host, settings.port,
                  settings.version)

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    boot_log.info("Shutting down")
    await realtime.close()
    await runner.cleanup()
    await state.abandon()  # as when Immich stops: queued jobs (a forced delete's file removal) are left undone
    await db.close()
    return maintenance.of(app).exit_code


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    try:
        settings = Settings.from_env(os.environ)
    except ConfigError as exc:
        logging.getLogger("immich.Config").error("%s", exc)
        return 1 if isinstance(exc, LogLevelError) else 2
    logging.getLogger("immich").setLevel(settings.log_level)
    logging.getLogger("immich.Config").info(
        "Starting the Immich API double %s (media location %s)", settings.version, settings.media_location
    )
    try:
        return asyncio.run(serve(settings))
    except KeyboardInterrupt:
        return 0

