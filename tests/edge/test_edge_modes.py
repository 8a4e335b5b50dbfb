"""The Access settings that change how refusals look: strict service-token authentication off, 401 instead of login."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from immich_conformance.limits import JWT_HEADER

from .support import SERVICE_HEADERS, EdgeHandle, RecordingOrigin, start_edge


@pytest.fixture(scope="module")
def lenient_edge(tmp_path_factory: pytest.TempPathFactory, origin: RecordingOrigin,
                 tls_dir: Path) -> Iterator[EdgeHandle]:
    handle = start_edge(tmp_path_factory.mktemp("lenient"), origin, tls_dir, strict_service_token_auth=False)
    yield handle
    handle.process.stop()


@pytest.fixture(scope="module")
def edge_401(tmp_path_factory: pytest.TempPathFactory, origin: RecordingOrigin,
             tls_dir: Path) -> Iterator[EdgeHandle]:
    handle = start_edge(tmp_path_factory.mktemp("edge401"), origin, tls_dir, service_auth_401_redirect=True)
    yield handle
    handle.process.stop()


def test_without_strict_mode_a_bad_token_falls_back_to_the_login_flow(lenient_edge: EdgeHandle,
                                                                      origin: RecordingOrigin) -> None:
    with lenient_edge.client(headers={**SERVICE_HEADERS, "CF-Access-Client-Secret": "wrong"}) as client:
        resp = client.get("/api/server/ping")
    assert resp.status_code == 302 and "/cdn-cgi/access/login/" in resp.headers["Location"]
    assert origin.seen() == []


def test_without_strict_mode_a_valid_token_also_hands_out_a_session_cookie(lenient_edge: EdgeHandle,
                                                                           origin: RecordingOrigin) -> None:
    with lenient_edge.client(headers=SERVICE_HEADERS) as client:
        resp = client.get("/api/server/ping")
    assert resp.status_code == 200
    cookies = [c for c in resp.headers.get_list("Set-Cookie") if c.startswith("CF_Authorization=")]
    assert len(cookies) == 1 and "Secure" in cookies[0] and "HttpOnly" in cookies[0]
    session = cookies[0].split(";", 1)[0].split("=", 1)[1]
    assert origin.seen()[0].headers[JWT_HEADER] == session

    with lenient_edge.client(headers={"Cookie": f"CF_Authorization={session}"}) as client:  # the cookie alone
        assert client.get("/api/server/ping").status_code == 200
    assert origin.seen()[1].headers[JWT_HEADER] == session
    assert "Cf-Access-Authenticated-User-Email" not in origin.seen()[1].headers  # a service token is no user


def test_strict_mode_hands_out_no_cookie(edge: EdgeHandle, origin: RecordingOrigin) -> None:
    with edge.client(headers=SERVICE_HEADERS) as client:
        resp = client.get("/api/server/ping")
    assert resp.status_code == 200
    assert not [c for c in resp.headers.get_list("Set-Cookie") if c.startswith("CF_Authorization=")]


def test_with_401_for_service_auth_a_request_without_credentials_gets_401(edge_401: EdgeHandle,
                                                                          origin: RecordingOrigin) -> None:
    with edge_401.client(headers={"Accept": "application/json"}) as client:
        resp = client.get("/api/server/ping")
        ok = client.get("/api/server/ping", headers=SERVICE_HEADERS)
    assert resp.status_code == 401 and "Location" not in resp.headers
    assert ok.status_code == 200
    assert len(origin.seen()) == 1
