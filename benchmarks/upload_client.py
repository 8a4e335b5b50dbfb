"""Times uploads of N bytes over one socket each. Runs in-process or, for the shaped link, inside a network
namespace: ``python -m benchmarks.upload_client HOST PORT BYTES ROUNDS [HEADER=VALUE ...]`` prints MiB/s per round."""

from __future__ import annotations

import socket
import sys
import time

_BUFFERS: dict[int, memoryview] = {}


def upload(host: str, port: int, size: int, headers: dict[str, str]) -> float:
    """Seconds from connect to the complete response of one POST with ``size`` zero bytes."""
    body = _BUFFERS.setdefault(size, memoryview(bytes(size)))
    head = f"POST /api/assets HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: {size}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    started = time.perf_counter()
    with socket.create_connection((host, port), timeout=120) as sock:
        sock.sendall(head.encode())
        sock.sendall(body)
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"{host}:{port} closed the connection without answering")
            response += chunk
    status = int(response.split(b" ", 2)[1])
    if status != 200:
        raise RuntimeError(f"upload to {host}:{port} answered {status}")
    return time.perf_counter() - started


def main(argv: list[str]) -> None:
    host, port, size, rounds = argv[0], int(argv[1]), int(argv[2]), int(argv[3])
    headers = dict(a.split("=", 1) for a in argv[4:])
    for _ in range(rounds):
        print(f"{size / upload(host, port, size, headers) / 2**20:.1f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
