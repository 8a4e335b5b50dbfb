"""A team JWKS endpoint over TLS whose state a test controls: serving, failing (503), or refusing connections."""

from __future__ import annotations

import ssl
from pathlib import Path

from aiohttp import web

from ..access_keys import KeyRing
from ..procs import LOOPBACK
from .thread_server import ThreadedServer


class ControllableJwks(ThreadedServer):
    name = "jwks"

    def __init__(self, ring: KeyRing, cert_file: Path, key_file: Path) -> None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert_file, key_file)
        super().__init__(ssl_context=context)
        self.ring = ring
        self.available = True
        self.fetches = 0

    @property
    def url(self) -> str:
        return f"https://{self.ring.team_domain}:{self.port}/cdn-cgi/access/certs"

    @property
    def connect(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/cdn-cgi/access/certs", self._certs)
        return app

    async def _certs(self, request: web.Request) -> web.Response:
        self.fetches += 1
        if not self.available:
            return web.Response(status=503, text="unavailable")
        return web.json_response(self.ring.jwks())
