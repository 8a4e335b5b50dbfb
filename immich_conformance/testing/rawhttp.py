"""A raw HTTP/1.1 client for what ordinary clients will not send: exact bodies, chunked streams that cross a limit,
Content-Length together with Transfer-Encoding, bodies sent slowly, and a count of the bytes the server let in."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

CHUNK = 1024 * 1024


@dataclass
class RawResponse:
    status: int | None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    sent: int = 0
    """Body bytes the client managed to hand to the kernel before the server answered or closed."""
    elapsed: float = 0.0
    """Seconds from the end of the request head to the status line (or to the connection's end)."""
    interim: list[int] = field(default_factory=list)
    """Interim (1xx) statuses seen before the final one."""


def zeros(total: int, chunk: int = CHUNK) -> Iterator[bytes]:
    block = bytes(chunk)
    remaining = total
    while remaining > 0:
        n = min(chunk, remaining)
        yield block if n == chunk else bytes(n)
        remaining -= n


def chunked(parts: Iterable[bytes], *, terminate: bool = True) -> Iterator[bytes]:
    """Transfer-Encoding: chunked framing of ``parts``."""
    for part in parts:
        if part:
            yield f"{len(part):x}\r\n".encode() + part + b"\r\n"
    if terminate:
        yield b"0\r\n\r\n"


def request(
    host: str,
    port: int,
    method: str,
    path: str,
    headers: dict[str, str] | list[tuple[str, str]],
    body: Iterable[bytes] = (),
    *,
    wait_for_continue: bool = False,
    timeout: float = 30.0,
    pause: float = 0.0,
) -> RawResponse:
    """Send one request and read the response; stop sending the body as soon as the server has answered."""
    items = list(headers.items()) if isinstance(headers, dict) else list(headers)
    if not any(k.lower() == "host" for k, _ in items):
        items.insert(0, ("Host", f"{host}:{port}"))
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in items) + "\r\n"
    result = RawResponse(status=None)
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(head.encode("latin-1"))
        started = time.monotonic()
        reader = _Reader(sock)
        if wait_for_continue:
            status, hdrs = reader.status_and_headers()
            if status == 100:
                result.interim.append(100)
            else:
                return _finish(reader, result, status, hdrs, started, method)
        sock.setblocking(False)
        try:
            for piece in body:
                if not _send_unless_answered(sock, piece, reader, result, pause):
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass
        sock.setblocking(True)
        sock.settimeout(timeout)
        try:
            status, hdrs = reader.status_and_headers()
            # 101 Switching Protocols is the last HTTP on the connection: it is the final answer here.
            while status is not None and 100 <= status < 200 and status != 101:
                result.interim.append(status)
                status, hdrs = reader.status_and_headers()
        except (ConnectionResetError, TimeoutError, OSError):
            status, hdrs = None, {}
        return _finish(reader, result, status, hdrs, started, method)


def _send_unless_answered(
    sock: socket.socket, piece: bytes, reader: _Reader, result: RawResponse, pause: float
) -> bool:
    view = memoryview(piece)
    while view:
        if reader.peek_available():
            return False
        try:
            n = sock.send(view)
        except BlockingIOError:
            _wait_writable_or_readable(sock)
            continue
        result.sent += n
        view = view[n:]
    if pause:
        time.sleep(pause)  # a deliberately slow client, not a wait for a condition
    return True


def _wait_writable_or_readable(sock: socket.socket) -> None:
    select.select([sock], [sock], [], 1.0)


def _finish(reader: _Reader, result: RawResponse, status: int | None, hdrs: dict[str, str], started: float,
            method: str) -> RawResponse:
    result.elapsed = time.monotonic() - started
    result.status = status
    result.headers = hdrs
    if status is not None and method != "HEAD" and status != 101:
        result.body = reader.body(hdrs)
    return result


class _Reader:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def peek_available(self) -> bool:
        try:
            data = self.sock.recv(65536, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True
        if not data:
            return True
        self.buf += data
        return True

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        if not data:
            return False
        self.buf += data
        return True

    def status_and_headers(self) -> tuple[int | None, dict[str, str]]:
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                return None, {}
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        return status, headers

    def body(self, headers: dict[str, str]) -> bytes:
        try:
            if "content-length" in headers:
                n = int(headers["content-length"])
                while len(self.buf) < n and self._fill():
                    pass
                return self.buf[:n]
            if headers.get("transfer-encoding", "").lower() == "chunked":
                while not self.buf.endswith(b"0\r\n\r\n") and self._fill():
                    pass
                return _dechunk(self.buf)
        except OSError:
            pass
        return self.buf


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2 :]
    return out
