"""Immich's live-update socket (socket.io v4 over a websocket at /api/socket.io), as the app opens it.

Speaks just enough Engine.IO/Socket.IO to prove the socket works end to end: the Engine.IO open packet, the namespace
connect, and the server's first event (Immich announces ``on_server_version``).
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI
from websockets.sync.client import connect

PATH = "/api/socket.io/?EIO=4&transport=websocket"


@dataclass
class SocketOutcome:
    opened: bool
    http_status: int | None = None
    """The HTTP status when the websocket upgrade itself was refused."""
    refusal: str = ""
    first_event: tuple[str, Any] | None = None


def open_live_updates(base_url: str, headers: dict[str, str], *, timeout: float = 10.0) -> SocketOutcome:
    """Open the socket at ``base_url`` (http://host:port) sending ``headers`` (a Host header is honoured)."""
    parts = urlsplit(base_url)
    host_header = headers.get("Host") or headers.get("host") or parts.netloc
    extra = {k: v for k, v in headers.items() if k.lower() != "host"}
    sock = socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout)
    try:
        with connect(f"ws://{host_header}{PATH}", sock=sock, additional_headers=extra, open_timeout=timeout) as ws:
            opening = ws.recv(timeout=timeout)
            if not str(opening).startswith("0"):
                return SocketOutcome(False, refusal=f"unexpected Engine.IO open packet {opening!r}")
            ws.send("40")
            while True:
                packet = str(ws.recv(timeout=timeout))
                if packet == "2":  # Engine.IO ping
                    ws.send("3")
                elif packet.startswith("44"):
                    return SocketOutcome(False, refusal=f"namespace connect refused: {packet[2:]}")
                elif packet.startswith("40"):
                    continue  # connected; wait for the first event
                elif packet.startswith("42"):
                    name, *args = json.loads(packet[2:])
                    return SocketOutcome(True, first_event=(name, args[0] if args else None))
                elif packet.startswith("41") or packet.startswith("1"):
                    return SocketOutcome(False, refusal="the server disconnected the socket")
    except InvalidStatus as exc:
        return SocketOutcome(False, http_status=exc.response.status_code, refusal="the websocket upgrade was refused")
    except InvalidURI as exc:  # a redirect to a page that is not a websocket: the Access login
        return SocketOutcome(False, http_status=302, refusal=f"redirected to {exc.uri}")
    except ConnectionClosed as exc:
        return SocketOutcome(False, refusal=f"the server closed the socket ({exc})")
    finally:
        sock.close()
