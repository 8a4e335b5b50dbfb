"""Request bodies at the origin proxy: the limit held exactly, oversized bodies refused before Immich sees them."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from immich_conformance.limits import JWT_HEADER, MAX_BODY_BYTES
from immich_conformance.origin_proxy import OriginProxy
from immich_conformance.testing import rawhttp
from immich_conformance.testing.recording_upstream import RecordingUpstream

from .conftest import settled

GIB = 1024**3


def send(proxy: OriginProxy, headers: dict[str, str], body=(), **kwargs) -> rawhttp.RawResponse:  # noqa: ANN001
    return rawhttp.request("127.0.0.1", proxy.port, "POST", "/api/assets", headers, body, **kwargs)


def complete_requests(proxy: OriginProxy, upstream: RecordingUpstream) -> list[int]:
    return [s.body_bytes for s in settled(proxy, upstream) if s.complete]


@pytest.mark.slow
def test_body_of_exactly_the_limit_is_forwarded_whole(
    token: Callable[..., str], proxy: OriginProxy, upstream: RecordingUpstream
) -> None:
    response = send(proxy, {JWT_HEADER: token(), "Content-Length": str(MAX_BODY_BYTES)},
                    rawhttp.zeros(MAX_BODY_BYTES))
    assert response.status == 200
    assert complete_requests(proxy, upstream) == [MAX_BODY_BYTES]


def test_limit_plus_one_is_refused_before_any_byte_reaches_immich(
    token: Callable[..., str], proxy: OriginProxy, upstream: RecordingUpstream
) -> None:
    response = send(proxy, {JWT_HEADER: token(), "Content-Length": str(MAX_BODY_BYTES + 1)},
                    rawhttp.zeros(MAX_BODY_BYTES + 1))
    assert response.status == 413
    assert settled(proxy, upstream) == []
    assert response.sent < MAX_BODY_BYTES


def test_one_gib_content_length_is_refused_at_once(
    token: Callable[..., str], proxy: OriginProxy, upstream: RecordingUpstream
) -> None:
    response = send(proxy, {JWT_HEADER: token(), "Content-Length": str(GIB)}, rawhttp.zeros(GIB))
    assert response.status == 413
    assert settled(proxy, upstream) == []
    assert response.sent < 64 * 1024 * 1024, "the proxy kept reading a body it had already refused"


def test_missing_token_with_a_huge_body_is_403_and_not_forwarded(
    proxy: OriginProxy, upstream: RecordingUpstream
) -> None:
    response = send(proxy, {"Content-Length": str(GIB)}, rawhttp.zeros(GIB))
    assert response.status == 403
    assert settled(proxy, upstream) == []


def test_small_chunked_body_is_forwarded(
    token: Callable[..., str], proxy: OriginProxy, upstream: RecordingUpstream
) -> None:
    response = send(proxy, {JWT_HEADER: token(), "Transfer-Encoding": "chunked"},
                    rawhttp.chunked(rawhttp.zeros(3 * 1024 * 1024 + 17)))
    assert response.status == 200
    assert complete_requests(proxy, upstream) == [3 * 1024 * 1024 + 17]


@pytest.mark.slow
def test_chunked_body_over_the_limit_never_completes_at_immich(
    token: Callable[..., str], proxy: OriginProxy, upstream: RecordingUpstream
) -> None:
    response = send(proxy, {JWT_HEADER: token(), "Transfer-Encoding": "chunked"},
                    rawhttp.chunked(rawhttp.zeros(MAX_BODY_BYTES + 1024 * 1024)))
    assert response.status in (413, None), "the request must fail: 413 or a cut connection"
    assert complete_requests(proxy, upstream) == []
    assert all(s.body_bytes <= MAX_BODY_BYTES for s in settled(proxy, upstream))


def test_content_length_with_transfer_encoding_is_refused(
    token: Callable[..., str], proxy: OriginProxy, upstream: RecordingUpstream
) -> None:
    response = send(
        proxy,
        {JWT_HEADER: token(), "Content-Length": "5", "Transfer-Encoding": "chunked"},
        rawhttp.chunked([b"hello"]),
    )
    assert response.status == 400
    assert settled(proxy, upstream) == []


def test_expect_continue_over_the_limit_gets_413_without_100(
    token: Callable[..., str], proxy: OriginProxy, upstream: RecordingUpstream
) -> None:
    response = send(proxy, {JWT_HEADER: token(), "Content-Length": str(MAX_BODY_BYTES + 1), "Expect": "100-continue"},
                    rawhttp.zeros(MAX_BODY_BYTES + 1), wait_for_continue=True)
    assert response.status == 413
    assert response.interim == []
    assert response.sent == 0
    assert settled(proxy, upstream) == []


def test_expect_continue_within_the_limit_is_served(
    token: Callable[..., str], proxy: OriginProxy, upstream: RecordingUpstream
) -> None:
    response = send(proxy, {JWT_HEADER: token(), "Content-Length": "1024", "Expect": "100-continue"},
                    [bytes(1024)], wait_for_continue=True)
    assert response.interim == [100]
    assert response.status == 200
    assert complete_requests(proxy, upstream) == [1024]


def test_slow_body_is_forwarded_whole(
    token: Callable[..., str], proxy: OriginProxy, upstream: RecordingUpstream
) -> None:
    parts = [bytes(4096)] * 12
    response = send(proxy, {JWT_HEADER: token(), "Content-Length": str(4096 * 12)}, parts, pause=0.25)
    assert response.status == 200
    assert complete_requests(proxy, upstream) == [4096 * 12]
