"""A tiny upstream that records every request and every body byte it gets: what the origin proxy let through.

Runs in a background thread of the test process. ``/api/socket.io`` accepts websockets and echoes text frames.
Any path answers 200 with ``{"received": <bytes>}``; a ``Range`` header gets a 206 slice of a fixed payload.

Each client (each proxy) can have a door of its own, a port that counts the connections it accepted and the ones whose
end it has processed. With the client's own counts (Envoy's ``upstream_cx_total``, ``upstream_cx_active``) that says
when everything the client sent has been read: a request cut by the client may sit unread in the kernel after the
client is done with it, and would otherwise be recorded after the test that sent it had looked.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

from ..procs import LOOPBACK
from .thread_server import ThreadedServer, bound_loopback_socket

RANGE_PAYLOAD = bytes(range(256)) * 16


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    header_list: list[tuple[str, str]]
    body_bytes: int = 0
    complete: bool = False
    ended: bool = False
    """The handler is done with the request: ``body_bytes`` no longer changes."""
    websocket_messages: list[str] = field(default_factory=list)


@dataclass
class Door:
    """One listening port of the recorder: connections accepted, and those whose end the recorder has processed (after
    which a request on it is either recorded or never will be)."""

    accepted: int = 0
    closed: int = 0

    @property
    def open(self) -> int:
        return self.accepted - self.closed


class _Counted(asyncio.Protocol):
    """aiohttp's protocol for one connection, counted on its door."""

    def __init__(self, inner: asyncio.Protocol, door: Door) -> None:
        self._inner = inner
        self._door = door
        door.accepted += 1

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        try:
            self._inner.connection_lost(exc)
        finally:
            self._door.closed += 1


class RecordingUpstream(ThreadedServer):
    name = "recording-upstream"

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._doors: dict[int, Door] = {}
        self._listeners: list[asyncio.Server] = []

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def listen(self) -> str:
        """A new door onto the same recorder: its address, for one client whose traffic is to be told apart."""
        sock = bound_loopback_socket()
        asyncio.run_coroutine_threadsafe(self._serve_on(sock), self._loop).result(timeout=10)
        return f"{LOOPBACK}:{sock.getsockname()[1]}"

    def door(self, address: str) -> Door:
        """The counts of the door at ``address`` (one of ``address`` or ``listen()``'s), as of now."""
        return dataclasses.replace(self._doors[int(address.rpartition(":")[2])])

    @contextmanager
    def held(self, timeout: float = 60) -> Iterator[None]:
        """Inside, the recorder reads nothing, as a busy server would: what reaches it waits in the kernel."""
        holding, release = threading.Event(), threading.Event()

        def hold() -> None:
            holding.set()
            release.wait(timeout)

        self._loop.call_soon_threadsafe(hold)
        holding.wait(timeout=10)
        try:
            yield
        finally:
            release.set()

    def stop(self) -> None:
        for listener in self._listeners:
            self._loop.call_soon_threadsafe(listener.close)
        super().stop()

    async def _serve_on(self, sock: socket.socket) -> None:
        assert self._runner is not None
        door = self._doors[sock.getsockname()[1]] = Door()
        server = self._runner.server
        assert server is not None
        self._listeners.append(
            await asyncio.get_running_loop().create_server(lambda: _Counted(server(), door), sock=sock)
        )

    def reset(self) -> None:
        with self._lock:
            self.seen.clear()

    def snapshot(self) -> list[Seen]:
        with self._lock:
            return list(self.seen)

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=0)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        seen = Seen(request.method, request.path_qs, dict(request.headers), list(request.headers.items()))
        with self._lock:
            self.seen.append(seen)
        try:
            return await self._answer(request, seen)
        finally:
            seen.ended = True

    async def _answer(self, request: web.Request, seen: Seen) -> web.StreamResponse:
        if request.path.startswith("/api/socket.io") and request.headers.get("upgrade", "").lower() == "websocket":
            return await self._websocket(request, seen)
        try:
            while chunk := await request.content.readany():
                seen.body_bytes += len(chunk)
            seen.complete = True
        except Exception:  # noqa: BLE001 - a cut body is what some tests provoke
            raise web.HTTPBadRequest() from None
        if "range" in request.headers:
            start, _, end = request.headers["range"].removeprefix("bytes=").partition("-")
            part = RANGE_PAYLOAD[int(start) : int(end) + 1]
            return web.Response(
                status=206,
                body=part,
                headers={"Content-Range": f"bytes {start}-{end}/{len(RANGE_PAYLOAD)}", "Accept-Ranges": "bytes"},
            )
        return web.json_response({"received": seen.body_bytes})

    async def _websocket(self, request: web.Request, seen: Seen) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        seen.complete = True
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                seen.websocket_messages.append(msg.data)
                await ws.send_str(msg.data)
            elif msg.type == WSMsgType.BINARY:
                seen.body_bytes += len(msg.data)
                await ws.send_str(f"binary {len(msg.data)}")
        return ws
