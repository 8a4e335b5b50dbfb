"""The live-update socket client: what it reports when the socket opens, when the proxy refuses it, and when nothing is
there. The server side is python-socketio on aiohttp, as in the double; the refusing proxy is a plain HTTP server."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import socketio
from aiohttp import web

from immich_conformance.live_updates import open_live_updates
from immich_conformance.procs import LOOPBACK, free_port, port_open, wait_until

API_KEY = "k" * 20
VERSION = {"major": 3, "minor": 0, "patch": 3, "prerelease": None}


@pytest.fixture(scope="module")
def socket_server() -> Iterator[str]:
    """A socket.io server at /api/socket.io that wants an x-api-key and a Host, and announces its version."""
    sio = socketio.AsyncServer(async_mode="aiohttp")

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        if environ.get("HTTP_X_API_KEY") != API_KEY:
            raise socketio.exceptions.ConnectionRefusedError("unauthorized")
        if environ.get("HTTP_HOST") != "photos.example.test":
            raise socketio.exceptions.ConnectionRefusedError(f"wrong host {environ.get('HTTP_HOST')}")
        await sio.emit("on_server_version", VERSION, to=sid)

    app = web.Application()
    sio.attach(app, socketio_path="/api/socket.io")
    port = free_port()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, LOOPBACK, port).start())
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    wait_until(lambda: port_open(port), timeout=10, what="the socket.io server")
    yield f"http://{LOOPBACK}:{port}"

    async def stop() -> None:
        await runner.cleanup()
        pending = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)
    loop.close()


class _Refusing(BaseHTTPRequestHandler):
    """Answers every request as a proxy that refuses the upgrade: a redirect to a login page, or 403."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - the http.server interface
        if self.server.redirect:  # type: ignore[attr-defined]
            self.send_response(302)
            self.send_header("Location", "https://team.example.test/cdn-cgi/access/login")
        else:
            self.send_response(403)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(params=[True, False], ids=["redirect", "forbidden"])
def refusing_proxy(request: pytest.FixtureRequest) -> Iterator[tuple[str, bool]]:
    server = ThreadingHTTPServer((LOOPBACK, 0), _Refusing)
    server.redirect = request.param  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://{LOOPBACK}:{server.server_address[1]}", request.param
    server.shutdown()
    server.server_close()


def test_the_socket_opens_and_the_first_event_is_reported(socket_server: str) -> None:
    outcome = open_live_updates(socket_server, {"Host": "photos.example.test", "x-api-key": API_KEY})
    assert outcome.opened and outcome.http_status is None
    assert outcome.first_event == ("on_server_version", VERSION)


def test_a_refused_connect_is_not_an_open_socket(socket_server: str) -> None:
    outcome = open_live_updates(socket_server, {"Host": "photos.example.test", "x-api-key": "wrong"})
    assert not outcome.opened and outcome.http_status is None
    assert "unauthorized" in outcome.refusal


def test_the_host_header_is_the_one_given(socket_server: str) -> None:
    outcome = open_live_updates(socket_server, {"Host": "other.example.test", "x-api-key": API_KEY})
    assert not outcome.opened and "wrong host other.example.test" in outcome.refusal


def test_a_refused_upgrade_reports_the_proxys_status(refusing_proxy: tuple[str, bool]) -> None:
    url, redirect = refusing_proxy
    outcome = open_live_updates(url, {"Host": "photos.example.test", "x-api-key": API_KEY}, timeout=5)
    assert not outcome.opened
    if redirect:
        assert outcome.http_status == 302
        assert outcome.refusal == "redirected to https://team.example.test/cdn-cgi/access/login"
    else:
        assert outcome.http_status == 403 and outcome.refusal == "the websocket upgrade was refused"


def test_nothing_listening_is_an_error_not_a_refusal() -> None:
    with pytest.raises(OSError):
        open_live_updates(f"http://{LOOPBACK}:{free_port()}", {"x-api-key": API_KEY}, timeout=5)
