"""Access at the edge: who is let through to the origin, with what, and how everyone else is answered."""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest

from immich_conformance.access_keys import KeyRing
from immich_conformance.limits import JWT_HEADER

from .support import (
    AUD,
    PUBLIC_HOST,
    SERVICE_HEADERS,
    TEAM_DOMAIN,
    TOKEN_ID,
    TOKEN_SECRET,
    EdgeHandle,
    RecordingOrigin,
    raw_request,
)

ISSUER = f"https://{TEAM_DOMAIN}"
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "User-Agent": "Mozilla/5.0"}
API = {"Accept": "application/json", "User-Agent": "immich-cli"}


def verify_with_published_keys(edge: EdgeHandle, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Verify an assertion the way an origin does: keys from the JWKS fetched over TLS, RS256, aud, iss, exp."""
    header = jwt.get_unverified_header(token)
    keys = {k.key_id: k for k in jwt.PyJWKSet.from_dict(edge.jwks()).keys}
    claims = jwt.decode(token, keys[header["kid"]].key, algorithms=["RS256"], audience=AUD, issuer=ISSUER,
                        options={"require": ["exp", "iat", "iss", "aud"]})
    return header, claims


def assert_login_redirect(location: str, path_qs: str) -> None:
    parts = urlsplit(location)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", TEAM_DOMAIN, f"/cdn-cgi/access/login/{PUBLIC_HOST}")
    assert parse_qs(parts.query) == {"kid": [AUD], "redirect_url": [path_qs]}


def test_a_host_other_than_the_public_hostname_is_never_forwarded(edge: EdgeHandle, origin: RecordingOrigin) -> None:
    with edge.client(headers=SERVICE_HEADERS) as client:
        other = client.get("/api/server/ping", headers={"Host": "other.example.test"})
        by_ip = client.get("/api/server/ping", headers={"Host": f"127.0.0.1:{edge.port}"})
    assert other.status_code == 530 and "1016" in other.text
    assert by_ip.status_code == 403 and "1003" in by_ip.text
    assert other.headers["Server"] == "cloudflare"
    assert origin.seen() == []


def test_a_browser_without_a_session_is_sent_to_the_team_login_page(edge: EdgeHandle, origin: RecordingOrigin) -> None:
    with edge.client(headers=BROWSER) as client:
        resp = client.get("/photos/abc?view=grid")
    assert resp.status_code == 302
    assert_login_redirect(resp.headers["Location"], "/photos/abc?view=grid")
    assert "set-cookie" not in resp.headers
    status, headers, body = edge.team_get(urlsplit(resp.headers["Location"]).path + "?"
                                          + urlsplit(resp.headers["Location"]).query)
    assert status == 200 and headers["Content-Type"].startswith("text/html") and b"Sign in" in body
    assert "Set-Cookie" not in headers, "the login page must not issue anything"
    assert origin.seen() == []


def test_an_api_request_without_credentials_gets_the_same_redirect_and_its_body_is_not_read(
    edge: EdgeHandle, origin: RecordingOrigin
) -> None:
    with edge.client(headers=API) as client:
        resp = client.post("/api/assets?key=1", content=b"x" * 5000)
    assert resp.status_code == 302
    assert_login_redirect(resp.headers["Location"], "/api/assets?key=1")
    # a request whose body never comes is answered at once: the edge decides on the headers alone
    answer = raw_request(edge.port, f"POST /api/assets HTTP/1.1\r\nHost: {PUBLIC_HOST}\r\nContent-Length: 1000\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 302 ")
    # a client-made assertion is no credential: Access never trusts the header from outside
    forged = KeyRing.generate(TEAM_DOMAIN, count=1).mint(AUD, common_name=TOKEN_ID)
    with edge.client(headers={**API, JWT_HEADER: forged}) as client:
        assert client.get("/api/server/ping").status_code == 302
    assert origin.seen() == []


def test_a_cors_preflight_without_credentials_is_refused_with_403(edge: EdgeHandle, origin: RecordingOrigin) -> None:
    with edge.client() as client:
        resp = client.options("/api/assets", headers={"Origin": "https://elsewhere.example",
                                                      "Access-Control-Request-Method": "PUT"})
    assert resp.status_code == 403
    assert origin.seen() == []


@pytest.mark.parametrize(
    "headers",
    [
        {"CF-Access-Client-Id": TOKEN_ID, "CF-Access-Client-Secret": "wrong-secret"},
        {"CF-Access-Client-Id": "unknown.access", "CF-Access-Client-Secret": TOKEN_SECRET},
        {"CF-Access-Client-Id": TOKEN_ID},
        {"CF-Access-Client-Secret": TOKEN_SECRET},
    ],
    ids=["wrong-secret", "unknown-id", "id-only", "secret-only"],
)
def test_a_service_token_that_cannot_authenticate_gets_401(edge: EdgeHandle, origin: RecordingOrigin,
                                                           headers: dict[str, str]) -> None:
    with edge.client(headers={**API, **headers}) as client:
        resp = client.get("/api/server/ping")
    assert resp.status_code == 401
    assert origin.seen() == []


def test_duplicate_service_token_headers_get_401(edge: EdgeHandle, origin: RecordingOrigin) -> None:
    head = (f"GET /api/server/ping HTTP/1.1\r\nHost: {PUBLIC_HOST}\r\nCF-Access-Client-Id: {TOKEN_ID}\r\n"
            f"CF-Access-Client-Id: {TOKEN_ID}\r\nCF-Access-Client-Secret: {TOKEN_SECRET}\r\nConnection: close\r\n\r\n")
    assert raw_request(edge.port, head).startswith(b"HTTP/1.1 401 ")
    assert origin.seen() == []


def test_a_valid_service_token_reaches_the_origin_with_a_fresh_application_token(
    edge: EdgeHandle, origin: RecordingOrigin
) -> None:
    injected = edge.ring.mint(AUD, common_name="someone-else.access")  # even a well-signed one is replaced
    sent = {
        **SERVICE_HEADERS,
        JWT_HEADER: injected,
        "Cf-Connecting-Ip": "198.51.100.7",
        "Cf-Ray": "0000000000000000-XXX",
        "X-Forwarded-For": "203.0.113.9",
        "X-Forwarded-Proto": "http",
        "X-Real-IP": "198.51.100.8",
        "Authorization": "Bearer immich-api-key",
    }
    before = int(time.time())
    with edge.client(headers=sent) as client:
        resp = client.get("/api/server/ping?x=%2Fa")
    assert resp.status_code == 200, resp.text
    [seen] = origin.seen()
    assert (seen.method, seen.target) == ("GET", "/api/server/ping?x=%2Fa")
    h = seen.headers
    assert "CF-Access-Client-Id" not in h and "CF-Access-Client-Secret" not in h
    assert h.getall(JWT_HEADER) == [h[JWT_HEADER]] and h[JWT_HEADER] != injected

    header, claims = verify_with_published_keys(edge, h[JWT_HEADER])
    assert header["alg"] == "RS256" and header["kid"] == edge.ring.active.kid
    assert set(claims) == {"type", "aud", "exp", "iss", "common_name", "iat", "sub"}
    assert claims["type"] == "app" and claims["aud"] == [AUD] and claims["iss"] == ISSUER
    assert claims["common_name"] == TOKEN_ID and claims["sub"] == ""
    assert before <= claims["iat"] <= int(time.time()) < claims["exp"]

    assert h["Host"] == PUBLIC_HOST
    assert h["Cf-Connecting-Ip"] == "127.0.0.1"
    assert h["X-Forwarded-For"] == "203.0.113.9, 127.0.0.1"
    assert h["X-Forwarded-Proto"] == "https"
    assert h["Cf-Visitor"] == '{"scheme":"https"}'
    assert re.fullmatch(r"[0-9a-f]{16}-[A-Z]{3}", h["Cf-Ray"]) and h["Cf-Ray"] == resp.headers["Cf-Ray"]
    assert "X-Real-IP" not in h
    assert h["Authorization"] == "Bearer immich-api-key"

    assert resp.headers.get_list("Set-Cookie") == ["origin_a=1; Path=/", "origin_b=2; Path=/"]
    assert "X-Accel-Redirect" not in resp.headers and resp.headers["X-Origin"] == "recording"


def test_a_logged_in_browser_passes_with_its_cookie_and_the_origin_gets_it_as_the_assertion(
    edge: EdgeHandle, origin: RecordingOrigin
) -> None:
    session = edge.ring.mint(AUD, email="alice@example.test")
    with edge.client(headers={**BROWSER, "Cookie": f"theme=dark; CF_Authorization={session}"}) as client:
        resp = client.get("/photos")
    assert resp.status_code == 200
    [seen] = origin.seen()
    assert seen.headers[JWT_HEADER] == session
    assert seen.headers["Cf-Access-Authenticated-User-Email"] == "alice@example.test"
    assert "CF_Authorization=" in seen.headers["Cookie"]


@pytest.mark.parametrize("kind", ["other-aud", "expired", "foreign-key", "tampered", "not-a-jwt"])
def test_a_cookie_that_is_not_this_applications_token_is_no_session(edge: EdgeHandle, origin: RecordingOrigin,
                                                                      kind: str) -> None:
    ring = edge.ring
    token = {
        "other-aud": lambda: ring.mint("0" * 64, email="alice@example.test"),
        "expired": lambda: ring.mint(AUD, email="alice@example.test", now=time.time() - 7200, ttl=3600),
        "foreign-key": lambda: KeyRing.generate(TEAM_DOMAIN, count=1).active.sign(
            ring.claims(AUD, email="alice@example.test"), headers={"kid": ring.active.kid}),
        "tampered": lambda: ring.mint(AUD, email="alice@example.test")[:-4] + "AAAA",
        "not-a-jwt": lambda: "hello",
    }[kind]()
    with edge.client(headers={**BROWSER, "Cookie": f"CF_Authorization={token}"}) as client:
        resp = client.get("/photos")
    assert resp.status_code == 302
    assert origin.seen() == []


def test_responses_stream_back_and_head_has_no_body(edge: EdgeHandle, origin: RecordingOrigin) -> None:
    with edge.client(headers=SERVICE_HEADERS) as client:
        resp = client.get("/stream/40")
        head = client.head("/api/server/ping")
    assert resp.status_code == 200 and len(resp.content) == 40 * 65536
    assert resp.content[65536 * 39:] == bytes([39]) * 65536
    assert head.status_code == 200 and head.content == b""
    assert [r.method for r in origin.seen()] == ["GET", "HEAD"]
