"""The proxy tests' yardstick: what Immich received is known only once the upstream has read all the proxy sent it.

Envoy being done with a request is not enough: a request it cut can sit unread in the upstream's kernel buffers, and
be recorded later, in another test.
"""

from __future__ import annotations

import contextlib
import http.client
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from immich_conformance.limits import JWT_HEADER
from immich_conformance.origin_proxy import OriginProxy
from immich_conformance.procs import wait_until
from immich_conformance.testing.jwks_endpoint import ControllableJwks
from immich_conformance.testing.recording_upstream import RecordingUpstream

from .conftest import accounted, proxy_settings, settled


@pytest.fixture
def own_proxy(
    jwks: ControllableJwks, upstream: RecordingUpstream, pki: dict[str, Path], tmp_path: Path
) -> Iterator[OriginProxy]:
    """A proxy with no connection to the upstream yet."""
    with OriginProxy(proxy_settings(jwks, upstream, pki), tmp_path) as running:
        yield running


@pytest.mark.parametrize("kept_alive", [False, True], ids=["on a new connection", "on a kept-alive connection"])
def test_a_request_cut_before_immich_read_it_is_waited_for(
    kept_alive: bool, token: Callable[..., str], own_proxy: OriginProxy, upstream: RecordingUpstream
) -> None:
    """On a new connection the upstream has not even accepted it; on a kept-alive one it has not seen it close. The
    client keeps one connection throughout, so that Envoy keeps the same worker and that worker's upstream connection.
    """
    proxy = own_proxy
    with contextlib.closing(http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)) as client:
        if kept_alive:
            client.request("GET", "/api/server/ping", headers={JWT_HEADER: token()})
            assert client.getresponse().read() == b'{"received": 0}'
            settled(proxy, upstream)
            upstream.reset()
        forwarded = proxy.stats()["cluster.immich.upstream_rq_total"] + 1
        with upstream.held():
            client.putrequest("POST", "/api/assets")
            client.putheader(JWT_HEADER, token())
            client.putheader("Content-Length", "4096")
            client.endheaders(bytes(1024))
            wait_until(lambda: proxy.stats()["cluster.immich.upstream_rq_total"] == forwarded, timeout=10,
                       what="the proxy to forward the request")
            client.close()
            wait_until(lambda: proxy.stats()["cluster.immich.upstream_cx_destroy"] == 1, timeout=10,
                       what="the proxy to close its connection upstream, the client gone")
            assert proxy.stats()["cluster.immich.upstream_cx_total"] == 1, "one upstream connection throughout"
            assert upstream.snapshot() == []
            assert accounted(proxy, upstream) is None, "the cut request is still unread, so nothing is known yet"
        assert [(s.path, s.body_bytes, s.complete) for s in settled(proxy, upstream)] == [("/api/assets", 1024, False)]


def test_each_proxy_has_a_door_of_its_own(
    token: Callable[..., str], proxy: OriginProxy, upstream: RecordingUpstream
) -> None:
    assert httpx.get(f"{proxy.url}/api/server/ping", headers={JWT_HEADER: token()}, timeout=10).status_code == 200
    assert [s.path for s in settled(proxy, upstream)] == ["/api/server/ping"]
    assert upstream.door(proxy.settings.upstream).accepted >= 1
    assert upstream.door(upstream.address).accepted == 0
