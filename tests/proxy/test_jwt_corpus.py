"""The adversarial token corpus: each case asserts the proxy's status and what the upstream saw."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import jwt
import pytest

from immich_conformance import token_forgery as forge
from immich_conformance.access_keys import KeyRing
from immich_conformance.limits import ACCESS_COOKIE, JWT_HEADER
from immich_conformance.origin_proxy import OriginProxy
from immich_conformance.testing import rawhttp
from immich_conformance.testing.recording_upstream import RecordingUpstream

from .conftest import AUD, TEAM, now, settled

Headers = list[tuple[str, str]]


def unsigned(ring: KeyRing, alg: str = "none", signature: str = "") -> str:
    return forge.unsigned(ring, AUD, alg, signature)


def hs256_with_public_key(ring: KeyRing) -> str:
    return forge.hs256_with_public_key(ring, AUD)


def other_alg(ring: KeyRing, alg: str) -> str:
    return jwt.encode(forge.service_claims(ring, AUD), ring.active.private_key, algorithm=alg,
                      headers={"kid": ring.active.kid})


# Each case: id -> function(ring, token factory) -> request headers. All of these must be refused with 403.
REFUSED: dict[str, Callable[[KeyRing, Callable[..., str]], Headers]] = {
    "no header": lambda r, t: [],
    "empty header": lambda r, t: [(JWT_HEADER, "")],
    "whitespace header": lambda r, t: [(JWT_HEADER, "   ")],
    "garbage": lambda r, t: [(JWT_HEADER, "not-a-jwt")],
    "three garbage segments": lambda r, t: [(JWT_HEADER, "aaaa.bbbb.cccc")],
    "header of 64 KiB": lambda r, t: [(JWT_HEADER, "a" * 65536)],
    "valid token padded to 64 KiB": lambda r, t: [(JWT_HEADER, t() + "A" * (65536 - len(t())))],
    "alg none": lambda r, t: [(JWT_HEADER, unsigned(r))],
    "alg none with a signature": lambda r, t: [(JWT_HEADER, unsigned(r, "none", "c2lnbmF0dXJl"))],
    "alg None mixed case": lambda r, t: [(JWT_HEADER, unsigned(r, "None"))],
    "HS256 signed with the public key": lambda r, t: [(JWT_HEADER, hs256_with_public_key(r))],
    "RS384 with the right key": lambda r, t: [(JWT_HEADER, other_alg(r, "RS384"))],
    "PS256 with the right key": lambda r, t: [(JWT_HEADER, other_alg(r, "PS256"))],
    "wrong key, known kid": lambda r, t: [(JWT_HEADER, forge.signed_by_stranger(r, AUD))],
    "wrong key, unknown kid": lambda r, t: [(JWT_HEADER, forge.signed_by_stranger(r, AUD, known_kid=False))],
    "tampered payload": lambda r, t: [(JWT_HEADER, forge.tampered(t()))],
    "truncated signature": lambda r, t: [(JWT_HEADER, t()[:-10])],
    "expired beyond the leeway": lambda r, t: [(JWT_HEADER, t(iat=now() - 7200, nbf=now() - 7200, exp=now() - 90))],
    "expired long ago": lambda r, t: [(JWT_HEADER, t(iat=now() - 90000, nbf=now() - 90000, exp=now() - 86400))],
    "nbf in the future": lambda r, t: [(JWT_HEADER, t(nbf=now() + 600))],
    "no exp": lambda r, t: [(JWT_HEADER, t(exp=None))],
    "wrong aud": lambda r, t: [(JWT_HEADER, t(aud=["0" * 64]))],
    "aud as a plain wrong string": lambda r, t: [(JWT_HEADER, t(aud="not-our-app"))],
    "empty aud": lambda r, t: [(JWT_HEADER, t(aud=[]))],
    "wrong iss": lambda r, t: [(JWT_HEADER, t(iss="https://other-team.cloudflareaccess.com"))],
    "iss over http": lambda r, t: [(JWT_HEADER, t(iss=f"http://{TEAM}"))],
    "no iss": lambda r, t: [(JWT_HEADER, t(iss=None))],
    "token only in the CF_Authorization cookie": lambda r, t: [("Cookie", f"{ACCESS_COOKIE}={t()}")],
    "token as a bearer": lambda r, t: [("Authorization", f"Bearer {t()}")],
    "token in a differently named header": lambda r, t: [("Cf-Access-Jwt", t())],
    "duplicated header, garbage then valid": lambda r, t: [(JWT_HEADER, "garbage"), (JWT_HEADER, t())],
    "duplicated header, valid then expired": lambda r, t: [
        (JWT_HEADER, t()),
        (JWT_HEADER, t(iat=now() - 7200, nbf=now() - 7200, exp=now() - 3600)),
    ],
}


@pytest.mark.parametrize("case", list(REFUSED), ids=list(REFUSED))
def test_refused_tokens_never_reach_immich(
    case: str, ring: KeyRing, token: Callable[..., str], proxy: OriginProxy, upstream: RecordingUpstream
) -> None:
    response = rawhttp.request("127.0.0.1", proxy.port, "GET", "/api/server/ping", REFUSED[case](ring, token))
    assert response.status == 403, response.body
    assert len(response.body) < 200 and b"Traceback" not in response.body
    assert settled(proxy, upstream) == []


ACCEPTED: dict[str, Callable[[KeyRing, Callable[..., str]], Headers]] = {
    "service token (common_name, empty sub, no nbf, no email)": lambda r, t: [(JWT_HEADER, t(nbf=None))],
    "user token (email)": lambda r, t: [(JWT_HEADER, r.mint(AUD, email="someone@example.test"))],
    "aud list with ours among others": lambda r, t: [(JWT_HEADER, t(aud=["0" * 64, AUD]))],
    "signed by the previous key": lambda r, t: [(JWT_HEADER, t(key_index=0))],
    "expired within the 30 s leeway": lambda r, t: [(JWT_HEADER, t(exp=now() - 5))],
    "duplicated header, the same valid token twice": lambda r, t: [(JWT_HEADER, (tok := t())), (JWT_HEADER, tok)],
}


@pytest.mark.parametrize("case", list(ACCEPTED), ids=list(ACCEPTED))
def test_valid_tokens_are_served(
    case: str, ring: KeyRing, token: Callable[..., str], proxy: OriginProxy, upstream: RecordingUpstream
) -> None:
    response = rawhttp.request("127.0.0.1", proxy.port, "GET", "/api/server/ping", ACCEPTED[case](ring, token))
    assert response.status == 200, response.body
    [seen] = settled(proxy, upstream)
    assert seen.path == "/api/server/ping"


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_valid_token_on_every_method(
    method: str, token: Callable[..., str], proxy: OriginProxy, upstream: RecordingUpstream
) -> None:
    body = b"{}" if method in {"POST", "PUT", "PATCH"} else None
    response = httpx.request(method, f"{proxy.url}/api/assets", headers={JWT_HEADER: token()}, content=body,
                             timeout=10)
    assert response.status_code == 200
    [seen] = settled(proxy, upstream)
    assert (seen.method, seen.path, seen.complete) == (method, "/api/assets", True)
    assert seen.body_bytes == (2 if body else 0)


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_missing_token_on_every_method(method: str, proxy: OriginProxy, upstream: RecordingUpstream) -> None:
    response = httpx.request(method, f"{proxy.url}/api/assets", content=b"x" * 1024 if method == "POST" else None,
                             timeout=10)
    assert response.status_code == 403
    assert settled(proxy, upstream) == []


def test_forwarded_headers_as_immich_asks(
    token: Callable[..., str], proxy: OriginProxy, upstream: RecordingUpstream
) -> None:
    response = httpx.get(
        f"{proxy.url}/api/server/ping",
        headers={JWT_HEADER: token(), "Host": "photos.example.test", "X-Forwarded-Proto": "https",
                 "X-Forwarded-For": "203.0.113.7"},
        timeout=10,
    )
    assert response.status_code == 200
    [seen] = settled(proxy, upstream)
    assert seen.headers["Host"] == "photos.example.test"
    assert seen.headers["X-Forwarded-Proto"] == "https"
    assert seen.headers["X-Forwarded-For"].split(",")[0].strip() == "203.0.113.7"
    # Envoy appends the address cloudflared connected from (for a loopback peer: this host's own address).
    assert len(seen.headers["X-Forwarded-For"].split(",")) == 2


def test_range_requests_pass(token: Callable[..., str], proxy: OriginProxy, upstream: RecordingUpstream) -> None:
    response = httpx.get(f"{proxy.url}/api/assets/x/original", headers={JWT_HEADER: token(), "Range": "bytes=0-9"},
                         timeout=10)
    assert response.status_code == 206
    assert response.content == bytes(range(10))
    assert settled(proxy, upstream)[0].headers["Range"] == "bytes=0-9"
