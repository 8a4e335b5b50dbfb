"""The team domain (https://<team>.cloudflareaccess.com): the signing keys at /cdn-cgi/access/certs and a login page."""

from __future__ import annotations

import logging
from collections import Counter

from aiohttp import web

from immich_conformance.edge import pages
from immich_conformance.edge.keys import KeyRingSource

log = logging.getLogger("edge.team")


def make_team_app(keys: KeyRingSource, counters: Counter[str]) -> web.Application:
    async def certs(request: web.Request) -> web.Response:
        loaded = keys.current()
        counters["jwks served"] += 1
        log.info("GET /cdn-cgi/access/certs -> 200 (%d key(s), signing kid %s)", len(loaded.ring.keys),
                 loaded.ring.active.kid[:12])
        return web.Response(body=loaded.jwks_body, content_type="application/json",
                            headers={"Server": pages.SERVER, "Cache-Control": "no-store"})

    async def login(request: web.Request) -> web.Response:
        host = request.match_info["host"]
        counters["login pages served"] += 1
        log.info("GET /cdn-cgi/access/login/%s -> 200 login page", host)
        return web.Response(text=pages.login_page(host, dict(request.query)), content_type="text/html",
                            headers={"Server": pages.SERVER})

    app = web.Application()
    app.router.add_get("/cdn-cgi/access/certs", certs)
    app.router.add_get("/cdn-cgi/access/login/{host}", login)
    return app
