"""Immich's socket.io websocket passes the proxy with a valid token and is refused without one."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from immich_conformance.limits import JWT_HEADER
from immich_conformance.origin_proxy import OriginProxy
from immich_conformance.testing.recording_upstream import RecordingUpstream

from .conftest import settled

PATH = "/api/socket.io/?EIO=4&transport=websocket"


def ws_url(proxy: OriginProxy) -> str:
    return proxy.url.replace("http://", "ws://") + PATH


def test_websocket_with_a_token_is_upgraded_and_passes_frames(
    token: Callable[..., str], proxy: OriginProxy, upstream: RecordingUpstream
) -> None:
    with connect(ws_url(proxy), additional_headers={JWT_HEADER: token()}, open_timeout=10) as ws:
        ws.send("40")
        assert ws.recv(timeout=10) == "40"
        big = bytes(2 * 1024 * 1024)
        ws.send(big)
        assert ws.recv(timeout=10) == f"binary {len(big)}"
    [seen] = settled(proxy, upstream)
    assert seen.websocket_messages == ["40"]


def test_websocket_without_a_token_is_refused(proxy: OriginProxy, upstream: RecordingUpstream) -> None:
    with pytest.raises(InvalidStatus) as refused, connect(ws_url(proxy), open_timeout=10):
        pass
    assert refused.value.response.status_code == 403
    assert settled(proxy, upstream) == []


def test_websocket_with_an_expired_token_is_refused(
    token: Callable[..., str], proxy: OriginProxy, upstream: RecordingUpstream
) -> None:
    import time

    past = int(time.time()) - 7200
    with pytest.raises(InvalidStatus) as refused, connect(
        ws_url(proxy), additional_headers={JWT_HEADER: token(iat=past, nbf=past, exp=past + 60)}, open_timeout=10
    ):
        pass
    assert refused.value.response.status_code == 403
    assert settled(proxy, upstream) == []
