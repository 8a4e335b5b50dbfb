"""The team JWKS over time: fail closed when no key can be fetched, recover, follow key rotation."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from immich_conformance.access_keys import KeyRing
from immich_conformance.limits import JWT_HEADER
from immich_conformance.origin_proxy import OriginProxy
from immich_conformance.procs import wait_until
from immich_conformance.testing.jwks_endpoint import ControllableJwks
from immich_conformance.testing.recording_upstream import RecordingUpstream

from .conftest import AUD, TEAM, proxy_settings, settled

CACHE_SECONDS = 2


@dataclass
class Rig:
    ring: KeyRing
    jwks: ControllableJwks
    proxy: OriginProxy
    upstream: RecordingUpstream

    def status(self, token: str) -> int:
        return httpx.get(f"{self.proxy.url}/api/server/ping", headers={JWT_HEADER: token}, timeout=10).status_code

    def wait_status(self, token: str, status: int, timeout: float) -> float:
        started = time.monotonic()
        wait_until(lambda: self.status(token) == status, timeout=timeout, interval=0.2, what=f"status {status}")
        return time.monotonic() - started


@pytest.fixture
def rig_factory(pki: dict[str, Path], upstream: RecordingUpstream, tmp_path: Path) -> Iterator:
    made: list[Rig] = []

    def make(*, jwks_up: bool) -> Rig:
        ring = KeyRing.generate(TEAM, count=1)
        jwks = ControllableJwks(ring, pki["cert"], pki["key"]).start()
        jwks.available = jwks_up
        settings = proxy_settings(jwks, upstream, pki)
        settings.jwks_cache_seconds = CACHE_SECONDS
        rig = Rig(ring, jwks, OriginProxy(settings, tmp_path / f"proxy{len(made)}"), upstream)
        made.append(rig)
        rig.proxy.start()
        return rig

    yield make
    for rig in made:
        rig.proxy.stop()
        rig.jwks.stop()


def test_jwks_down_at_start_fails_closed_then_recovers(rig_factory) -> None:  # noqa: ANN001
    rig = rig_factory(jwks_up=False)
    token = rig.ring.mint(AUD, common_name="ci.access")
    assert rig.status(token) == 403
    assert settled(rig.proxy, rig.upstream) == []
    rig.jwks.available = True
    rig.wait_status(token, 200, timeout=15)


def test_jwks_down_later_keeps_known_keys_and_refuses_unknown_ones(rig_factory) -> None:  # noqa: ANN001
    rig = rig_factory(jwks_up=True)
    known = rig.ring.mint(AUD, common_name="ci.access")
    assert rig.status(known) == 200
    rig.jwks.available = False
    fetches = rig.jwks.fetches
    wait_until(lambda: rig.jwks.fetches >= fetches + 2, timeout=CACHE_SECONDS * 4 + 5, what="failed JWKS refetches")
    assert rig.status(known) == 200, "a key fetched before the outage stays trusted while it cannot be refreshed"
    rig.ring.rotate()
    rotated = rig.ring.mint(AUD, common_name="ci.access")
    assert rig.status(rotated) == 403, "a key the proxy never fetched must be refused"
    rig.jwks.available = True
    rig.wait_status(rotated, 200, timeout=CACHE_SECONDS + 10)


def test_key_rotation_is_picked_up_within_the_cache_duration(rig_factory) -> None:  # noqa: ANN001
    rig = rig_factory(jwks_up=True)
    old = rig.ring.mint(AUD, common_name="ci.access")
    assert rig.status(old) == 200
    rig.ring.rotate(keep=2)
    new = rig.ring.mint(AUD, common_name="ci.access")
    took = rig.wait_status(new, 200, timeout=CACHE_SECONDS + 10)
    assert took <= CACHE_SECONDS + 3
    assert rig.status(old) == 200, "the previous key stays valid after a rotation"
    rig.ring.rotate(keep=2)
    newest = rig.ring.mint(AUD, common_name="ci.access")
    rig.wait_status(newest, 200, timeout=CACHE_SECONDS + 10)
    rig.wait_status(old, 403, timeout=CACHE_SECONDS + 10)
