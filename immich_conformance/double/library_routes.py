"""The library's endpoints (users, API keys, albums, assets, tags, shared links, server about), registered before the
core ones so that fixed paths (``/api/assets/statistics``, ``/api/shared-links/me``) win over ``{id}`` templates."""

from __future__ import annotations

from aiohttp import web

from immich_conformance.double import albums, assets_library, server_about, shared_links, tags, users_admin


def add_routes(app: web.Application) -> None:
    for module in (server_about, users_admin, assets_library, albums, tags, shared_links):
        module.add_routes(app)
