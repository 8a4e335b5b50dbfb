"""A fast HTTP/1.1 upstream for benchmarks: reads each request body to the end, counts it, answers 200. A thread per
connection, keep-alive, Content-Length bodies only. Runs in its own process: ``python -m benchmarks.sink HOST PORT``."""

from __future__ import annotations

import socket
import sys
import threading

BUF = 1024 * 1024
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


def serve_connection(conn: socket.socket) -> None:
    buf = bytearray(BUF)
    view = memoryview(buf)
    pending = b""
    with conn:
        while True:
            while b"\r\n\r\n" not in pending:
                data = conn.recv(65536)
                if not data:
                    return
                pending += data
            head, _, pending = pending.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            remaining = length - len(pending)
            pending = b"" if remaining >= 0 else pending[length:]
            while remaining > 0:
                n = conn.recv_into(view, min(BUF, remaining))
                if n == 0:
                    return
                remaining -= n
            conn.sendall(OK)


def main(host: str, port: int) -> None:
    server = socket.create_server((host, port), backlog=128, reuse_port=False)
    print(f"sink listening on {host}:{port}", flush=True)
    while True:
        conn, _ = server.accept()
        threading.Thread(target=serve_connection, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
