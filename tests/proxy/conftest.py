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
from immich_conformance.procs import wait_until
from immich_conformance.testing.jwks_endpoint import ControllableJwks
from immich_conformance.testing.recording_upstream import RecordingUpstream, Seen
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
    """Settings for a proxy in front of ``upstream``, through a door of its own (see ``settled``)."""
    return ProxySettings(
        team_domain=TEAM,
        aud=AUD,
        upstream=upstream.listen(),
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


def accounted(proxy: OriginProxy, upstream: RecordingUpstream) -> list[Seen] | None:
    """What Immich received from ``proxy``, if all of it is known now; None while some of it may still come.

    All is known when the proxy has no request open upstream, the upstream has accepted every connection the proxy
    opened and processed the end of every one it closed, and each recorded request has ended. Envoy being idle is not
    enough: a request it cut may still wait, unread, in the kernel.
    """
    stats = proxy.stats()
    door = upstream.door(proxy.settings.upstream)
    seen = upstream.snapshot()
    quiet = (
        stats["cluster.immich.upstream_rq_active"] == 0
        and door.accepted == stats["cluster.immich.upstream_cx_total"]
        and door.open == stats["cluster.immich.upstream_cx_active"]
    )
    return seen if quiet and all(s.ended for s in seen) else None


def settled(proxy: OriginProxy, upstream: RecordingUpstream) -> list[Seen]:
    """What Immich received from ``proxy``, once all of it is known."""

    def probe() -> tuple[list[Seen]] | None:
        seen = accounted(proxy, upstream)
        return None if seen is None else (seen,)

    return wait_until(probe, timeout=10, what="everything the proxy sent upstream to be read")[0]


@pytest.fixture(autouse=True)
def _clean_state(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test starts with an empty record, and ends once what its proxies sent is read: a late request is never
    recorded in the next test."""
    if "upstream" in request.fixturenames:
        request.getfixturevalue("upstream").reset()
    yield
    if "upstream" in request.fixturenames:
        upstream = request.getfixturevalue("upstream")
        for proxy in [v for v in request.node.funcargs.values() if isinstance(v, OriginProxy) and v.process.alive()]:
            settled(proxy, upstream)
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
