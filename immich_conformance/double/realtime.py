"""socket.io at ``/api/socket.io`` (websocket transport only), authenticated like Immich's websocket gateway.

The connection is accepted at the socket.io level and then checked with the handshake's headers only (cookie
``immich_access_token``, ``x-api-key``, ``Authorization: Bearer``; query parameters are not looked at). A caller that
fails gets ``error`` "unauthorized" and is disconnected; one that passes joins a room named after its user id and
receives ``on_server_version``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import socketio
from aiohttp import web

from immich_conformance.double.auth import authenticate
from immich_conformance.double.database import Database
from immich_conformance.double.settings import ServerVersion
from immich_conformance.double.validation import ApiError

SOCKET_PATH = "/api/socket.io"

log = logging.getLogger("immich.WebsocketRepository")


class Realtime:
    def __init__(self, db: Callable[[], Database], version: ServerVersion) -> None:
        self._db = db
        self.version = version
        self.sio = socketio.AsyncServer(
            async_mode="aiohttp",
            cors_allowed_origins="*",
            transports=["websocket"],
            always_connect=True,  # connect first, then authenticate, so "error" can be sent before the disconnect
            logger=False,
            engineio_logger=False,
        )
        self.sio.on("connect", self._on_connect)
        self.sio.on("disconnect", self._on_disconnect)

    def attach(self, app: web.Application) -> None:
        self.sio.attach(app, socketio_path=SOCKET_PATH)

    async def _on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> bool:
        log.info("Websocket Connect:    %s", sid)
        request: web.Request = environ["aiohttp.request"]
        try:
            caller = await authenticate(self._db(), request.headers, {})
        except ApiError as exc:
            log.error("Websocket connection error: %s", exc)
            await self.sio.emit("error", "unauthorized", to=sid)
            return False
        await self.sio.enter_room(sid, caller.user_id)
        await self.send_to_user(caller.user_id, "on_server_version", self.version.as_dto())
        return True

    async def _on_disconnect(self, sid: str, *args: Any) -> None:
        log.info("Websocket Disconnect: %s", sid)

    async def send_to_user(self, user_id: str, event: str, *data: Any) -> None:
        await self.sio.emit(event, data[0] if len(data) == 1 else list(data), room=user_id)

    async def close(self) -> None:
        """Disconnect every client, then stop socket.io's background tasks (before the web server stops)."""
        if self.sio.eio.sockets:
            await self.sio.eio.disconnect()
        await self.sio.shutdown()
