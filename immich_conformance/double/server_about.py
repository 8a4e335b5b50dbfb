"""``GET /api/server/about`` (needs a caller) and ``GET /api/server/media-types`` (public)."""

from __future__ import annotations

from aiohttp import web

from immich_conformance.double import media_types
from immich_conformance.double import permissions as P
from immich_conformance.double.http_api import caller, json_response, state


async def about(request: web.Request) -> web.Response:
    await caller(request, P.SERVER_ABOUT)
    version = str(state(request).settings.version)
    return json_response({
        "version": version,
        "versionUrl": f"https://github.com/immich-app/immich/releases/tag/{version}",
        "licensed": False,
    })


async def supported_media_types(request: web.Request) -> web.Response:
    return json_response({
        "image": sorted(media_types.IMAGE_TYPES),
        "video": sorted(media_types.VIDEO_TYPES),
        "sidecar": sorted(media_types.SIDECAR_TYPES),
    })


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/server/about", about)
    app.router.add_get("/api/server/media-types", supported_media_types)
