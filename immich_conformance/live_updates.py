"""Immich's live-update socket (socket.io v4 over a websocket at /api/socket.io), opened as the app opens it.

python-socketio's client speaks Engine.IO/Socket.IO; the socket counts as open once the namespace is connected and the
server's first event has come (Immich announces ``on_server_version``). The library reports every failed upgrade as a
bare "Connection error", without the HTTP status or a redirect's Location, so when the socket does not open, one plain
HTTP upgrade request (redirects not followed) reads what the proxy answered: the status and, for a redirect, where to
(the Access login).
"""

from __future__ import annotations

import base64
import http.client
import os
import queue
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import socketio

SOCKETIO_PATH = "/api/socket.io"
PATH = f"{SOCKETIO_PATH}/?EIO=4&transport=websocket"
_CLOSED = ("", None)


@dataclass
class SocketOutcome:
    opened: bool
    http_status: int | None = None
    """The HTTP status when the websocket upgrade itself was refused."""
    refusal: str = ""
    first_event: tuple[str, Any] | None = None


def open_live_updates(base_url: str, headers: dict[str, str], *, timeout: float = 10.0) -> SocketOutcome:
    """Open the socket at ``base_url`` (http://host:port) sending ``headers`` (a Host header is honoured).

    Raises OSError when nothing answers at ``base_url`` and TimeoutError when the socket opens but no event comes:
    neither is a refusal.
    """
    host = next((v for k, v in headers.items() if k.lower() == "host"), None)
    extra = {k: v for k, v in headers.items() if k.lower() != "host"}
    options: dict[str, Any] = {"suppress_origin": True, "redirect_limit": 0, **({"host": host} if host else {})}
    client = socketio.Client(reconnection=False, request_timeout=timeout, websocket_extra_options=options)
    events: queue.Queue[tuple[str, Any]] = queue.Queue()
    connect_errors: list[Any] = []
    client.on("*", lambda name, *args: events.put((name, args[0] if args else None)))
    client.on("connect_error", lambda *data: connect_errors.extend(data))
    client.on("disconnect", lambda *_reason: events.put(_CLOSED))
    try:
        client.connect(base_url, headers=extra, transports=["websocket"], socketio_path=SOCKETIO_PATH,
                       wait_timeout=timeout)
    except socketio.exceptions.ConnectionError as exc:
        status, location = _upgrade_answer(base_url, headers, timeout)
        if status == 101:
            detail = "; ".join(str(e) for e in connect_errors if e) or str(exc)
            return SocketOutcome(False, refusal=f"the socket opened but the connect was refused: {detail}")
        if 300 <= status < 400:
            return SocketOutcome(False, http_status=status, refusal=f"redirected to {location}")
        return SocketOutcome(False, http_status=status, refusal="the websocket upgrade was refused")
    try:
        first = events.get(timeout=timeout)
    except queue.Empty:
        raise TimeoutError(f"the live-update socket at {base_url} opened but no event came within {timeout:g}s; "
                           "Immich announces on_server_version at once") from None
    finally:
        client.disconnect()
    if first is _CLOSED:
        return SocketOutcome(False, refusal="the server disconnected the socket")
    return SocketOutcome(True, first_event=first)


def _upgrade_answer(base_url: str, headers: dict[str, str], timeout: float) -> tuple[int, str]:
    """The status and Location the server answers a websocket upgrade request with (redirects not followed)."""
    parts = urlsplit(base_url)
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(parts.hostname or "", parts.port, timeout=timeout)
    upgrade = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode()}
    try:
        connection.request("GET", PATH, headers={**upgrade, **headers})
        response = connection.getresponse()
        return response.status, response.getheader("Location") or ""
    finally:
        connection.close()
