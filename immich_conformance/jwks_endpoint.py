"""A team JWKS endpoint over TLS whose state a test controls: serving, failing (503), or refusing connections."""

from __future__ import annotations

import asyncio
import ssl
import threading
from pathlib import Path

from aiohttp import web

from .access_keys import KeyRing
from .procs import LOOPBACK, free_port


class ControllableJwks:
    def __init__(self, ring: KeyRing, cert_file: Path, key_file: Path) -> None:
        self.ring = ring
        self.port = free_port()
        self.available = True
        self.fetches = 0
        self._ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ssl.load_cert_chain(cert_file, key_file)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="jwks", daemon=True)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"https://{self.ring.team_domain}:{self.port}/cdn-cgi/access/certs"

    @property
    def connect(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def start(self) -> ControllableJwks:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(timeout=10)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_get("/cdn-cgi/access/certs", self._certs)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, LOOPBACK, self.port, ssl_context=self._ssl).start()

    async def _certs(self, request: web.Request) -> web.Response:
        self.fetches += 1
        if not self.available:
            return web.Response(status=503, text="unavailable")
        return web.json_response(self.ring.jwks())
