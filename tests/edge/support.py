"""What the edge tests share: a recording origin, a running edge, and ways to reach the team domain over TLS."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import socket
import ssl
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiohttp import WSMsgType, web
from multidict import CIMultiDict

import immich_conformance
from immich_conformance.access_keys import KeyRing
from immich_conformance.procs import LOOPBACK, ManagedProcess, free_port, free_ports, port_open

PUBLIC_HOST = "photos.example.test"
TEAM_DOMAIN = "sandbox-team.cloudflareaccess.test"  # a reserved name: nothing here can resolve it
AUD = "4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2"
TOKEN_ID = "88bf3b6d86161464f6509f7219099e57.access"
TOKEN_SECRET = "bdd31cbc4dec990953e39163fbbb194c93313ca9f0a6e420346af9d326b1d2a5"
TOKEN_NAME = "conformance-suite"
SERVICE_HEADERS = {"CF-Access-Client-Id": TOKEN_ID, "CF-Access-Client-Secret": TOKEN_SECRET}
REPO_ROOT = Path(immich_conformance.__file__).resolve().parent.parent
MiB = 1 << 20


# --- the origin: records what reaches it -----------------------------------------------------------------------------
@dataclass
class SeenRequest:
    method: str
    target: str
    headers: CIMultiDict[str]
    body_bytes: int = 0
    complete: bool = False  # the whole body arrived (for chunked: the terminating chunk too)
    finished: bool = False  # the origin is done with the request, complete or not
    error: str | None = None
    websocket_messages: list[Any] = field(default_factory=list)
    websocket_close_code: int | None = None


class RecordingOrigin:
    """An aiohttp server on a thread that records every request: method, target, headers, body byte count.

    ``/stream/<n>`` answers with n chunks of 64 KiB; a websocket upgrade gets an echo socket, which closes with code
    C when it receives the text ``close:C``. Everything else answers JSON ``{"bytes": <body bytes received>}``.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.records: list[SeenRequest] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> RecordingOrigin:
        self._thread = threading.Thread(target=self._run, name="recording-origin", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the recording origin did not start within 10 s")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)

    def clear(self) -> None:
        with self._lock:
            self.records.clear()

    def seen(self) -> list[SeenRequest]:
        with self._lock:
            return list(self.records)

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self._serve())
        self._loop.close()

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, max_field_size=32768, shutdown_timeout=1.0)
        await runner.setup()
        await web.TCPSite(runner, LOOPBACK, self.port).start()
        self._stop = asyncio.Event()
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        record = SeenRequest(request.method, request.raw_path, CIMultiDict(request.headers))
        with self._lock:
            self.records.append(record)
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._echo(request, record)
        try:
            async for chunk in request.content.iter_any():
                record.body_bytes += len(chunk)
            record.complete = True
        except Exception as exc:  # the sender went away mid-body: the request never completed
            record.error = repr(exc)
            record.finished = True
            return web.Response(status=400)
        record.finished = True
        if request.path.startswith("/stream/"):
            resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
            await resp.prepare(request)
            for i in range(int(request.path.rsplit("/", 1)[1])):
                await resp.write(bytes([i % 256]) * 65536)
            await resp.write_eof()
            return resp
        resp = web.json_response({"bytes": record.body_bytes})
        resp.headers.add("Set-Cookie", "origin_a=1; Path=/")
        resp.headers.add("Set-Cookie", "origin_b=2; Path=/")
        resp.headers["X-Accel-Redirect"] = "/internal/file"
        resp.headers["X-Origin"] = "recording"
        return resp

    async def _echo(self, request: web.Request, record: SeenRequest) -> web.StreamResponse:
        ws = web.WebSocketResponse(protocols=("echo",))
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                record.websocket_messages.append(msg.data)
                if msg.data.startswith("close:"):
                    await ws.close(code=int(msg.data.split(":", 1)[1]), message=b"origin closes")
                    break
                await ws.send_str(msg.data)
            elif msg.type == WSMsgType.BINARY:
                record.websocket_messages.append(msg.data)
                await ws.send_bytes(msg.data)
        record.websocket_close_code = ws.close_code
        record.finished = True
        return ws


# --- the edge under test ---------------------------------------------------------------------------------------------
@dataclass
class EdgeHandle:
    process: ManagedProcess
    config: dict[str, Any]
    config_path: Path
    ring: KeyRing
    ring_path: Path
    ca_file: Path

    @property
    def port(self) -> int:
        return int(self.config["listen"].rsplit(":", 1)[1])

    @property
    def team_port(self) -> int:
        return int(self.config["team_listen"].rsplit(":", 1)[1])

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def client(self, **kwargs: Any) -> httpx.Client:
        """An HTTP client that reaches the edge as if it were https://PUBLIC_HOST."""
        headers = {"Host": PUBLIC_HOST, **kwargs.pop("headers", {})}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, follow_redirects=False, **kwargs)

    def save_ring(self) -> None:
        self.ring.save(self.ring_path)

    def team_get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        return team_get(self.team_port, self.ca_file, path)

    def jwks(self) -> dict[str, Any]:
        status, _, body = self.team_get("/cdn-cgi/access/certs")
        assert status == 200, f"JWKS answered {status}"
        return json.loads(body)


def edge_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def write_edge_config(
    directory: Path,
    origin: RecordingOrigin,
    tls_dir: Path,
    *,
    name: str = "edge",
    ring: KeyRing | None = None,
    **overrides: Any,
) -> tuple[Path, dict[str, Any], KeyRing, Path]:
    """Write a key ring and an edge configuration for it; return the configuration's path and content."""
    directory.mkdir(parents=True, exist_ok=True)
    ring = ring or KeyRing.generate(TEAM_DOMAIN)
    ring_path = directory / "key-ring.json"
    ring.save(ring_path)
    listen_port, team_port = free_ports(2)
    config: dict[str, Any] = {
        "listen": f"{LOOPBACK}:{listen_port}",
        "public_hostname": PUBLIC_HOST,
        "origin_url": origin.url,
        "team_domain": TEAM_DOMAIN,
        "aud": AUD,
        "key_ring_file": str(ring_path),
        "service_tokens": [{"client_id": TOKEN_ID, "client_secret": TOKEN_SECRET, "name": TOKEN_NAME}],
        "team_listen": f"{LOOPBACK}:{team_port}",
        "team_tls_cert": str(tls_dir / "cert.pem"),
        "team_tls_key": str(tls_dir / "key.pem"),
        **overrides,
    }
    config_path = directory / f"{name}.json"
    config_path.write_text(json.dumps(config, indent=2))
    return config_path, config, ring, ring_path


def start_edge(
    directory: Path,
    origin: RecordingOrigin,
    tls_dir: Path,
    *,
    name: str = "edge",
    ring: KeyRing | None = None,
    **overrides: Any,
) -> EdgeHandle:
    config_path, config, ring, ring_path = write_edge_config(directory, origin, tls_dir, name=name, ring=ring,
                                                             **overrides)
    process = ManagedProcess(name, [sys.executable, "-m", "immich_conformance.edge", "--config", str(config_path)],
                             log_path=directory / f"{name}.log", env=edge_env()).start()
    handle = EdgeHandle(process, config, config_path, ring, ring_path, tls_dir / "ca.pem")
    try:
        process.wait_ready(lambda: port_open(handle.port) and port_open(handle.team_port), timeout=15)
    except BaseException:
        process.stop()
        raise
    return handle


# --- the team domain over TLS, verified against the sandbox CA --------------------------------------------------------
class _TeamConnection(http.client.HTTPSConnection):
    """Connects to 127.0.0.1 but verifies the certificate for (and sends SNI of) the team domain."""

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=TEAM_DOMAIN)  # type: ignore[attr-defined]


def team_get(port: int, ca_file: Path, path: str) -> tuple[int, dict[str, str], bytes]:
    context = ssl.create_default_context(cafile=str(ca_file))
    conn = _TeamConnection(LOOPBACK, port, timeout=10, context=context)
    try:
        conn.request("GET", path, headers={"Host": TEAM_DOMAIN})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


# --- bodies ----------------------------------------------------------------------------------------------------------
def zero_chunks(total: int, chunk: int = MiB) -> Iterator[bytes]:
    """``total`` zero bytes in chunks, from one shared buffer (no large allocation)."""
    block = bytes(chunk)
    view = memoryview(block)
    remaining = total
    while remaining > 0:
        n = min(chunk, remaining)
        yield block if n == chunk else bytes(view[:n])
        remaining -= n


def raw_request(port: int, head: str, *, timeout: float = 5.0) -> bytes:
    """Send a request head (no body) on a fresh connection; return what comes back until it closes or pauses."""
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as sock:
        sock.sendall(head.encode())
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                part = sock.recv(65536)
                if not part:
                    break
                data += part
        except TimeoutError:
            pass
        return data
