"""A POST whose body the server may refuse before reading it (a Content-Length over the limit gets its 413 at once).

The head goes first, then the body lazily, chunk by chunk; before each piece the socket is checked for an answer, and
the moment one has arrived, sending stops and the answer is read. So a 100 MiB body costs only what the socket
buffers take before the refusal comes back, not 100 MiB. Plain HTTP or TLS (https:// URLs, certificate verified).
"""

from __future__ import annotations

import select
import socket
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

_WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


@dataclass(frozen=True)
class EarlyAnswer:
    status: int | None
    """The final status; None when the connection ended without one."""
    body_bytes_sent: int
    detail: str = ""


def post_lazily(url: str, path: str, headers: Mapping[str, str], body: Iterable[bytes], *,
                timeout: float = 30.0, context: ssl.SSLContext | None = None) -> EarlyAnswer:
    """``context``: for https:// URLs (default: the system's trusted CAs, host name checked)."""
    parts = urlsplit(url)
    tls = parts.scheme == "https"
    host = parts.hostname or ""
    port = parts.port or (443 if tls else 80)
    items = dict(headers)
    if not any(k.lower() == "host" for k in items):
        items["Host"] = parts.netloc
    items["Connection"] = "close"
    head = f"POST {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in items.items()) + "\r\n"
    sock: socket.socket = socket.create_connection((host, port), timeout=timeout)
    try:
        if tls:
            sock = (context or ssl.create_default_context()).wrap_socket(sock, server_hostname=host)
        sock.sendall(head.encode("latin-1"))
        received = bytearray()
        sent = 0
        sock.setblocking(False)
        answered = False
        for piece in body:
            view = memoryview(piece)
            while view and not answered:
                answered = _answered(sock, received)
                if answered:
                    break
                try:
                    n = sock.send(view)
                except _WOULD_BLOCK:
                    select.select([sock], [sock], [], timeout)
                    continue
                except OSError:
                    answered = True  # the server closed: read whatever answer it left
                    break
                sent += n
                view = view[n:]
            if answered:
                break
        sock.settimeout(timeout)
        status, detail = _read_status(sock, received)
        return EarlyAnswer(status, sent, detail)
    finally:
        sock.close()


def _answered(sock: socket.socket, received: bytearray) -> bool:
    try:
        data = sock.recv(65536)
    except _WOULD_BLOCK:
        return False
    except OSError:
        return True
    received.extend(data)
    return True  # data, or b"" (the server closed)


def _read_status(sock: socket.socket, received: bytearray) -> tuple[int | None, str]:
    """The first non-1xx status line, reading more until the head is complete (or the connection ends)."""
    while True:
        end = received.find(b"\r\n\r\n")
        if end < 0:
            try:
                data = sock.recv(65536)
            except (OSError, TimeoutError) as exc:
                return None, f"no answer: {exc!r}"
            if not data:
                return None, "the connection closed without an answer"
            received.extend(data)
            continue
        status_line = bytes(received[: received.find(b"\r\n")]).decode("latin-1")
        del received[: end + 4]
        fields = status_line.split()
        if len(fields) < 2 or not fields[1].isdigit():
            return None, f"not an HTTP status line: {status_line[:80]!r}"
        status = int(fields[1])
        if status >= 200:
            return status, status_line
