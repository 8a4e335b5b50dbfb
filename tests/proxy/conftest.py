"""Fixtures for the origin proxy tests: the real Envoy with the stack's config, a team JWKS over TLS, and an upstream
that records what got through. Loopback only."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from immich_conformance.access_keys import KeyRing
from immich_conformance.origin_proxy import OriginProxy, ProxySettings
from immich_conformance.testing.jwks_endpoint import ControllableJwks
from immich_conformance.testing.recording_upstream import RecordingUpstream
from immich_conformance.tls import write_server_files

TEAM = "proxytest.cloudflareaccess.com"
AUD = "4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2"


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    files = write_server_files(tmp_path_factory.mktemp("pki"), [TEAM])
    return {"ca": files.ca_file, "cert": files.cert_file, "key": files.key_file}


@pytest.fixture(scope="session")
def ring() -> KeyRing:
    return KeyRing.generate(TEAM, count=2)


@pytest.fixture(scope="session")
def jwks(ring: KeyRing, pki: dict[str, Path]) -> Iterator[ControllableJwks]:
    server = ControllableJwks(ring, pki["cert"], pki["key"]).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def upstream() -> Iterator[RecordingUpstream]:
    server = RecordingUpstream().start()
    yield server
    server.stop()


def proxy_settings(jwks: ControllableJwks, upstream: RecordingUpstream, pki: dict[str, Path]) -> ProxySettings:
    return ProxySettings(
        team_domain=TEAM,
        aud=AUD,
        upstream=upstream.address,
        jwks_url=jwks.url,
        jwks_connect=jwks.connect,
        jwks_ca_file=pki["ca"],
    )


@pytest.fixture(scope="session")
def proxy(
    jwks: ControllableJwks, upstream: RecordingUpstream, pki: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OriginProxy]:
    with OriginProxy(proxy_settings(jwks, upstream, pki), tmp_path_factory.mktemp("proxy")) as running:
        yield running


@pytest.fixture(autouse=True)
def _clean_state(request: pytest.FixtureRequest) -> Iterator[None]:
    if "upstream" in request.fixturenames:
        request.getfixturevalue("upstream").reset()
    yield
    if "jwks" in request.fixturenames:
        request.getfixturevalue("jwks").available = True


@pytest.fixture
def token(ring: KeyRing) -> Callable[..., str]:
    """A valid Access token for the proxy's application; keyword arguments override claims."""

    def make(*, key_index: int = -1, headers: dict[str, Any] | None = None, **overrides: Any) -> str:
        claims = ring.claims(AUD, common_name="ci.access")
        claims.update(overrides)
        for name in [k for k, v in claims.items() if v is None]:
            del claims[name]
        return ring.keys[key_index].sign(claims, headers=headers)

    return make


def now() -> int:
    return int(time.time())
