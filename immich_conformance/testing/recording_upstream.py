"""A tiny upstream that records every request and every body byte it gets: what the origin proxy let through.

Runs in a background thread of the test process. ``/api/socket.io`` accepts websockets and echoes text frames.
Any path answers 200 with ``{"received": <bytes>}``; a ``Range`` header gets a 206 slice of a fixed payload.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

from ..procs import LOOPBACK
from .thread_server import ThreadedServer

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


class RecordingUpstream(ThreadedServer):
    name = "recording-upstream"

    def __init__(self, port: int | None = None) -> None:
        super().__init__(port)
        self.seen: list[Seen] = []
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

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
