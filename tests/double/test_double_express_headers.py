"""What Immich's HTTP layers add on the wire: Express' ``X-Powered-By`` and strong ETag with its 304, the
correlation id only where Immich's API middleware answers, and engine.io's own refusals at ``/api/socket.io/``."""

from __future__ import annotations

import base64
import os
import socket

import httpx
import pytest
from double_harness import DoubleServer, read_http_reply

from immich_conformance.procs import LOOPBACK

# Express' strong ETag of the ping's body {"res":"pong"} (14 bytes), as its `etag` package computes it
PING_ETAG = '"e-X79OU2IZYkDmLU4ZK9k3d4mHVbI"'
ENGINE = "/api/socket.io/"


def test_every_express_answer_is_powered_by_express_with_a_strong_etag(double: DoubleServer) -> None:
    ping = httpx.get(f"{double.url}/api/server/ping", timeout=5)
    assert ping.headers["x-powered-by"] == "Express"
    assert ping.headers["etag"] == PING_ETAG
    refused = httpx.get(f"{double.url}/api/users/me", timeout=5)  # errors are sent by res.json too
    assert refused.status_code == 401
    assert refused.headers["x-powered-by"] == "Express"
    assert refused.headers["etag"].startswith(f'"{len(refused.content):x}-')
    for path in ("/.well-known/immich", "/photos", "/api/nowhere"):
        answer = httpx.get(f"{double.url}{path}", timeout=5)
        assert answer.headers["x-powered-by"] == "Express", path
        assert "etag" in answer.headers, path


@pytest.mark.parametrize("if_none_match", [PING_ETAG, f"W/{PING_ETAG}", f'"other", {PING_ETAG}', "*"])
def test_a_get_of_an_unchanged_answer_is_304_without_its_body(double: DoubleServer, if_none_match: str) -> None:
    for method in ("GET", "HEAD"):
        answer = httpx.request(method, f"{double.url}/api/server/ping", headers={"If-None-Match": if_none_match},
                               timeout=5)
        assert answer.status_code == 304, (method, answer.status_code)
        assert answer.content == b""
        assert answer.headers["etag"] == PING_ETAG
        assert answer.headers["x-powered-by"] == "Express"
        assert "x-correlation-id" in answer.headers
        assert "content-type" not in answer.headers


def test_only_a_fresh_get_of_a_success_is_304(double: DoubleServer) -> None:
    def ping(**headers: str) -> int:
        return httpx.get(f"{double.url}/api/server/ping", headers=headers, timeout=5).status_code

    assert ping(**{"If-None-Match": '"e-another-body"'}) == 200
    assert ping(**{"If-None-Match": PING_ETAG, "Cache-Control": "no-cache"}) == 200
    assert ping(**{"If-Modified-Since": "Sun, 06 Dec 2026 00:00:00 GMT"}) == 200  # no Last-Modified is sent
    refused = httpx.get(f"{double.url}/api/users/me", timeout=5)
    again = httpx.get(f"{double.url}/api/users/me", headers={"If-None-Match": refused.headers["etag"]}, timeout=5)
    assert again.status_code == 401, "an error is never 'not modified'"
    login = {"email": "nobody@example.com", "password": "wrong"}
    first = httpx.post(f"{double.url}/api/auth/login", json=login, timeout=5)
    second = httpx.post(f"{double.url}/api/auth/login", json=login, headers={"If-None-Match": first.headers["etag"]},
                        timeout=5)
    assert second.status_code == first.status_code == 401, "only GET and HEAD are conditional"


def test_the_correlation_id_is_the_api_middlewares_only(double: DoubleServer) -> None:
    assert "x-correlation-id" in httpx.get(f"{double.url}/api/server/ping", timeout=5).headers
    assert "x-correlation-id" not in httpx.get(f"{double.url}/.well-known/immich", timeout=5).headers


@pytest.mark.parametrize(("method", "query", "code", "message"), [
    ("GET", "EIO=4&transport=polling", 0, "Transport unknown"),
    ("GET", "EIO=4", 0, "Transport unknown"),
    ("POST", "EIO=4&transport=polling", 0, "Transport unknown"),
    ("POST", "EIO=4&transport=websocket", 2, "Bad handshake method"),
    ("GET", "EIO=4&transport=websocket", 3, "Bad request"),
    ("GET", "EIO=4&transport=websocket&sid=no-such-session", 1, "Session ID unknown"),
], ids=["polling", "no-transport", "polling-post", "post", "websocket-without-upgrade", "unknown-session"])
def test_engine_io_refuses_a_plain_http_request_in_its_own_words(double: DoubleServer, method: str, query: str,
                                                                 code: int, message: str) -> None:
    answer = httpx.request(method, f"{double.url}{ENGINE}?{query}", timeout=5)
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json() == {"code": code, "message": message}
    for express_only in ("x-powered-by", "x-correlation-id", "etag"):
        assert express_only not in answer.headers, express_only


def _upgrade(double: DoubleServer, query: str) -> tuple[str, bytes]:
    key = base64.b64encode(os.urandom(16)).decode()
    with socket.create_connection((LOOPBACK, double.port), timeout=5) as raw:
        raw.sendall(f"GET {ENGINE}?{query} HTTP/1.1\r\nHost: double\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
        return read_http_reply(raw)


def test_the_sockets_101_and_an_upgrade_refusal_carry_no_express_header(double: DoubleServer) -> None:
    head, _ = _upgrade(double, "EIO=4&transport=websocket")
    assert head.startswith("HTTP/1.1 101"), head
    lowered = head.lower()
    assert "x-powered-by" not in lowered and "x-correlation-id" not in lowered, head
    head, body = _upgrade(double, "EIO=4&transport=polling")
    assert head.startswith("HTTP/1.1 400"), head
    assert body == b"Transport unknown"
    assert "x-powered-by" not in head.lower(), head
