"""A small aiohttp server on its own event loop in a background thread: for test peers (a JWKS endpoint, an upstream
that records what reaches it) that the test process drives and inspects directly."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from typing import TypeVar

from aiohttp import web

from ..procs import LOOPBACK

ServerT = TypeVar("ServerT", bound="ThreadedServer")


def bound_loopback_socket() -> socket.socket:
    """A TCP socket bound to a free loopback port, to hand to a server: no other process can take the port before the
    server listens on it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((LOOPBACK, 0))
    return sock


class ThreadedServer:
    """Subclasses build their app in ``make_app``; ``start``/``stop`` run it on 127.0.0.1:``port``."""

    name = "thread-server"

    def __init__(self, port: int | None = None, ssl_context: ssl.SSLContext | None = None) -> None:
        self._socket: socket.socket | None = None
        if port is None:
            self._socket = bound_loopback_socket()
            port = self._socket.getsockname()[1]
        self.port = port
        self._ssl = ssl_context
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name=self.name, daemon=True)

    def make_app(self) -> web.Application:
        raise NotImplementedError

    def start(self: ServerT) -> ServerT:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(timeout=10)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()

    async def _serve(self) -> None:
        self._runner = web.AppRunner(self.make_app(), access_log=None, handler_cancellation=True)
        await self._runner.setup()
        if self._socket is not None:
            await self._serve_on(self._socket)
        else:
            await web.TCPSite(self._runner, LOOPBACK, self.port, ssl_context=self._ssl).start()

    async def _serve_on(self, sock: socket.socket) -> None:
        """Serve the app on a bound socket (in the server's thread)."""
        assert self._runner is not None
        await web.SockSite(self._runner, sock, ssl_context=self._ssl).start()
