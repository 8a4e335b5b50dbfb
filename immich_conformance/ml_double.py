"""A machine-learning double: what the Immich server and the stack's probes ask of Immich's machine learning.

Immich's machine-learning service answers ``GET /ping`` with the text ``pong`` (its health check, used by the
server and by the stack's probes) and ``GET /`` with ``{"message": "Immich ML"}``. The double answers both the same
way. It runs no model: ``POST /predict`` gets ``501`` and anything else ``404``, with FastAPI's ``{"detail": ...}``
bodies, so a server that asks it for inference sees a clear failure, never a made-up result.

Run it with Immich's environment: ``IMMICH_HOST`` (default 0.0.0.0) and ``IMMICH_PORT`` (default 3003)::

    python -m immich_conformance.ml_double
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, Sequence

from aiohttp import web
from aiohttp.typedefs import Handler

DEFAULT_PORT = 3003
DEFAULT_HOST = "0.0.0.0"

log = logging.getLogger("immich_ml")


class SettingsError(ValueError):
    """An environment variable has a value the double cannot use."""


def listen_address(env: Mapping[str, str]) -> tuple[str, int]:
    host = (env.get("IMMICH_HOST") or DEFAULT_HOST).strip("[]")
    raw = env.get("IMMICH_PORT") or str(DEFAULT_PORT)
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise SettingsError(f"IMMICH_PORT={raw!r} is not a TCP port (1-65535)")
    return host, int(raw)


async def root(request: web.Request) -> web.Response:
    return web.json_response({"message": "Immich ML"})


async def ping(request: web.Request) -> web.Response:
    return web.Response(text="pong", content_type="text/plain", charset="utf-8")


async def predict(request: web.Request) -> web.Response:
    log.info("POST /predict -> 501: this double runs no model")
    return web.json_response({"detail": "Not Implemented: the machine-learning double runs no model"}, status=501)


@web.middleware
async def fastapi_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Unknown paths and methods answer as FastAPI does (``{"detail": ...}``), not with aiohttp's text pages."""
    try:
        return await handler(request)
    except web.HTTPMethodNotAllowed:
        return web.json_response({"detail": "Method Not Allowed"}, status=405)
    except web.HTTPNotFound:
        return web.json_response({"detail": "Not Found"}, status=404)


def make_app() -> web.Application:
    app = web.Application(middlewares=[fastapi_errors])
    app.router.add_get("/", root)
    app.router.add_get("/ping", ping)
    app.router.add_post("/predict", predict)
    return app


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    if argv:
        print("usage: python -m immich_conformance.ml_double  (configured by IMMICH_HOST and IMMICH_PORT)",
              file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        stream=sys.stdout)
    try:
        host, port = listen_address(os.environ if env is None else env)
    except SettingsError as exc:
        print(f"immich_ml: {exc}", file=sys.stderr)
        return 2
    log.info("machine-learning double listening on %s:%d (GET /ping -> pong; no models)", host, port)
    try:
        web.run_app(make_app(), host=host, port=port, print=None, access_log=None, shutdown_timeout=2.0)
    except OSError as exc:
        print(f"immich_ml: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
