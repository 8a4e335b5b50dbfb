"""What Immich answers outside its API routes and limits: the web app for any other GET, 500 for a JSON body over
10 MB (Express' json parser, before routing and authentication), Validation failed for an upload sent as JSON."""

from __future__ import annotations

import json
import socket

import httpx
from double_harness import DoubleServer, read_http_reply

from immich_conformance.procs import LOOPBACK

TEN_MB = 10 * 1024 * 1024


def test_a_non_api_get_is_the_web_app(double: DoubleServer) -> None:
    for path in ("/photos", "/", "/albums/some-id?x=1"):
        page = httpx.get(f"{double.url}{path}", timeout=5)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html"), path
        assert "<html" in page.text
    assert httpx.get(f"{double.url}/api/nowhere", timeout=5).json() == {"message": "Cannot GET /api/nowhere"}
    assert httpx.post(f"{double.url}/photos", timeout=5).json() == {"message": "Cannot POST /photos"}


def test_a_json_body_over_ten_megabytes_is_an_internal_error(double: DoubleServer) -> None:
    big = json.dumps({"email": "x" * TEN_MB, "password": "p"}).encode()
    for path in ("/api/auth/login", "/api/users/me"):  # the second needs credentials: the parser comes first
        answer = httpx.post(f"{double.url}{path}", content=big, headers={"Content-Type": "application/json"},
                            timeout=20)
        assert (answer.status_code, answer.json()) == (500, {"message": "Internal server error"}), path
    at_limit = json.dumps({"email": "x" * (TEN_MB - 40), "password": "p"}).encode()
    assert len(at_limit) <= TEN_MB
    answer = httpx.post(f"{double.url}/api/auth/login", content=at_limit, headers={"Content-Type": "application/json"},
                        timeout=20)
    assert answer.status_code == 400, answer.text[:200]  # read and validated: not an e-mail address


def test_an_announced_length_over_the_limit_is_refused_before_the_body(double: DoubleServer) -> None:
    with socket.create_connection((LOOPBACK, double.port), timeout=5) as raw:
        raw.sendall(f"POST /api/auth/login HTTP/1.1\r\nHost: double\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {TEN_MB + 1}\r\n\r\n{{".encode())
        head, body = read_http_reply(raw)
    assert head.startswith("HTTP/1.1 500"), head
    assert json.loads(body) == {"message": "Internal server error"}
