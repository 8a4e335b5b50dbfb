"""The body limit has no way around it: paths are normalised before routing, and only a body-less websocket GET of
socket.io's own path reaches the limit-free route.

Each trick carries a valid token and a body over the limit and asks for a websocket upgrade (or, as a control, does
not), on the socket.io path or on one that looks like it before normalisation. Most run against the stack's
configuration with a 1 MiB limit, so each sends a few MiB, not a hundred; the headline trick also runs at the real
limit. Raw HTTP throughout: ordinary clients normalise the path themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest
from websockets.sync.client import connect

from immich_conformance.limits import JWT_HEADER, MAX_BODY_BYTES
from immich_conformance.origin_proxy import OriginProxy
from immich_conformance.testing import rawhttp
from immich_conformance.testing.jwks_endpoint import ControllableJwks
from immich_conformance.testing.recording_upstream import RecordingUpstream, Seen

from .conftest import proxy_settings, settled

LIMIT = 1024 * 1024
OVER = LIMIT + 256 * 1024
SOCKET = "/api/socket.io/?EIO=4&transport=websocket"
UPGRADE = [
    ("Connection", "Upgrade"),
    ("Upgrade", "websocket"),
    ("Sec-WebSocket-Version", "13"),
    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
]


@pytest.fixture(scope="module")
def small_proxy(
    jwks: ControllableJwks, upstream: RecordingUpstream, pki: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OriginProxy]:
    settings = proxy_settings(jwks, upstream, pki)
    settings.max_body_bytes = LIMIT
    with OriginProxy(settings, tmp_path_factory.mktemp("small-proxy")) as running:
        yield running


def send(proxy: OriginProxy, method: str, path: str, headers: list[tuple[str, str]], *, size: int = OVER,
         chunked: bool = False) -> rawhttp.RawResponse:
    body: Iterable[bytes]
    if chunked:
        headers = [*headers, ("Transfer-Encoding", "chunked")]
        body = rawhttp.chunked(rawhttp.zeros(size, 64 * 1024))
    elif size:
        headers = [*headers, ("Content-Length", str(size))]
        body = rawhttp.zeros(size, 64 * 1024)
    else:
        body = ()
    return rawhttp.request("127.0.0.1", proxy.port, method, path, headers, body, timeout=15)


def assert_nothing_past_the_limit(received: list[Seen], limit: int) -> None:
    for seen in received:
        assert seen.body_bytes <= limit, f"{seen.method} {seen.path}: Immich got {seen.body_bytes} body bytes"
        assert "upgrade" not in {k.lower() for k in seen.headers}, f"{seen.method} {seen.path} was upgraded"


# (method, path): with a body, none of them is a body-less websocket GET of the socket path, however normalised.
TRICKS = {
    "dot segments": ("POST", "/api/socket.io/../assets"),
    "dot segments, deeper": ("POST", "/api/socket.io/./x/../../assets"),
    "encoded dots, lower case": ("POST", "/api/socket.io/%2e%2e/assets"),
    "encoded dots, upper case": ("POST", "/api/socket.io/%2E%2E/assets"),
    "half-encoded dots": ("POST", "/api/socket.io/.%2e/assets"),
    "duplicate slashes in front": ("POST", "//api/socket.io/../assets"),
    "duplicate slashes inside": ("POST", "/api//socket.io/"),
    "POST to the socket path itself": ("POST", "/api/socket.io/"),
    "POST to the socket path with the handshake query": ("POST", SOCKET),
    "PUT to the socket path": ("PUT", "/api/socket.io/"),
    "GET with a body to the socket path": ("GET", SOCKET),
    "GET with a body to a dot-segment path": ("GET", "/api/socket.io/../assets"),
    "GET with a body, duplicate slashes": ("GET", "//api//socket.io/"),
}

ESCAPED_SLASHES = {
    "encoded slashes, upper case": "/api/socket.io%2F..%2Fassets",
    "encoded slashes, lower case": "/api/socket.io%2f..%2fassets",
    "encoded slash after the socket path": "/api/socket.io/..%2Fassets",
    "encoded backslashes, upper case": "/api/socket.io%5C..%5Cassets",
    "encoded backslashes, lower case": "/api/socket.io%5c..%5cassets",
}


# A chunked GET upgrade is a case of its own: test_chunked_get_upgrade_reaches_immich_without_a_body.
UPGRADE_TRICKS = [
    pytest.param(method, path, chunked, id=f"{name}, {'chunked' if chunked else 'content-length'}")
    for name, (method, path) in TRICKS.items()
    for chunked in (False, True)
    if not (chunked and method == "GET")
]


@pytest.mark.parametrize(("method", "path", "chunked"), UPGRADE_TRICKS)
def test_an_upgrade_that_is_not_a_bodyless_socket_get_is_refused(
    method: str, path: str, chunked: bool, token: Callable[..., str], small_proxy: OriginProxy,
    upstream: RecordingUpstream,
) -> None:
    response = send(small_proxy, method, path, [(JWT_HEADER, token()), *UPGRADE], chunked=chunked)
    assert response.status == 403, f"expected the upgrade refused, got {response.status}"
    assert settled(small_proxy, upstream) == []


@pytest.mark.parametrize("path", ESCAPED_SLASHES.values(), ids=ESCAPED_SLASHES.keys())
@pytest.mark.parametrize("upgrade", [True, False], ids=["upgrade", "plain"])
def test_a_path_with_an_escaped_slash_is_refused_with_400(
    path: str, upgrade: bool, token: Callable[..., str], small_proxy: OriginProxy, upstream: RecordingUpstream
) -> None:
    headers = [(JWT_HEADER, token()), *(UPGRADE if upgrade else [])]
    response = send(small_proxy, "POST", path, headers)
    assert response.status == 400
    assert settled(small_proxy, upstream) == []


@pytest.mark.parametrize(("method", "path"), TRICKS.values(), ids=TRICKS.keys())
def test_without_the_upgrade_the_same_paths_keep_the_limit(
    method: str, path: str, token: Callable[..., str], small_proxy: OriginProxy, upstream: RecordingUpstream
) -> None:
    response = send(small_proxy, method, path, [(JWT_HEADER, token())])
    assert response.status == 413
    assert settled(small_proxy, upstream) == []
    chunked = send(small_proxy, method, path, [(JWT_HEADER, token())], chunked=True)
    assert chunked.status in (413, None), "a chunked body over the limit must fail: 413 or a cut connection"
    received = settled(small_proxy, upstream)
    assert not [s for s in received if s.complete]
    assert_nothing_past_the_limit(received, LIMIT)


@pytest.mark.parametrize("upgrade", [True, False], ids=["upgrade", "plain"])
def test_the_tricks_without_a_token_get_403(
    upgrade: bool, small_proxy: OriginProxy, upstream: RecordingUpstream
) -> None:
    for method, path in TRICKS.values():
        response = send(small_proxy, method, path, UPGRADE if upgrade else [])
        assert response.status == 403, f"{method} {path}: {response.status}"
    response = send(small_proxy, "GET", "//api/socket.io/%2e/?EIO=4&transport=websocket", UPGRADE, size=0)
    assert response.status == 403
    assert settled(small_proxy, upstream) == []


@pytest.mark.parametrize(
    "path", ["/api/assets", "/api/socket.io", "/api/socket.io/x", "/API/socket.io/", "/api/socket.io/;x"]
)
def test_a_websocket_anywhere_else_is_refused(
    path: str, token: Callable[..., str], small_proxy: OriginProxy, upstream: RecordingUpstream
) -> None:
    response = send(small_proxy, "GET", path, [(JWT_HEADER, token()), *UPGRADE], size=0)
    assert response.status == 403
    assert settled(small_proxy, upstream) == []


def test_chunked_get_upgrade_reaches_immich_without_a_body(
    token: Callable[..., str], small_proxy: OriginProxy, upstream: RecordingUpstream
) -> None:
    """Envoy drops Transfer-Encoding before routing, so this one does reach the socket route; what follows the head
    goes on as websocket bytes, never as a request body: Immich sees a plain handshake."""
    send(small_proxy, "GET", SOCKET, [(JWT_HEADER, token()), *UPGRADE], chunked=True)
    seen = settled(small_proxy, upstream)
    assert [(s.method, s.path) for s in seen] in ([], [("GET", SOCKET)])
    for s in seen:
        names = {k.lower() for k in s.headers}
        assert "transfer-encoding" not in names and s.headers.get("Content-Length", "0") == "0", s.headers
        assert s.body_bytes == 0


@pytest.mark.parametrize(
    "path",
    [SOCKET, "//api/socket.io/?EIO=4&transport=websocket", "/api/socket.io/%2e/?EIO=4&transport=websocket",
     "/api/x/../socket.io/?EIO=4&transport=websocket"],
    ids=["as sent by clients", "duplicate slash", "encoded dot segment", "dot segments"],
)
def test_a_bodyless_websocket_get_is_upgraded_with_the_normalised_path(
    path: str, token: Callable[..., str], small_proxy: OriginProxy, upstream: RecordingUpstream
) -> None:
    response = send(small_proxy, "GET", path, [(JWT_HEADER, token()), *UPGRADE], size=0)
    assert response.status == 101
    assert [(s.method, s.path) for s in settled(small_proxy, upstream)] == [("GET", SOCKET)]


@pytest.mark.parametrize(
    ("sent", "forwarded"),
    [("/api/socket.io/../assets", "/api/assets"), ("/api/socket.io/%2e%2e/assets", "/api/assets"),
     ("/api/socket.io/%2E%2E/assets?x=1", "/api/assets?x=1"), ("//api//assets", "/api/assets")],
)
def test_an_ordinary_request_is_forwarded_with_the_normalised_path(
    sent: str, forwarded: str, token: Callable[..., str], small_proxy: OriginProxy, upstream: RecordingUpstream
) -> None:
    response = send(small_proxy, "POST", sent, [(JWT_HEADER, token())], size=1024)
    assert response.status == 200
    assert [(s.path, s.body_bytes) for s in settled(small_proxy, upstream)] == [(forwarded, 1024)]


def test_any_content_length_on_the_socket_get_is_refused(
    token: Callable[..., str], small_proxy: OriginProxy, upstream: RecordingUpstream
) -> None:
    """Even 0: websocket clients send none, and the route admits no request that announces a body."""
    response = send(small_proxy, "GET", SOCKET, [(JWT_HEADER, token()), *UPGRADE, ("Content-Length", "0")], size=0)
    assert response.status == 403
    assert settled(small_proxy, upstream) == []


def test_the_websocket_itself_carries_more_than_the_limit(
    token: Callable[..., str], small_proxy: OriginProxy, upstream: RecordingUpstream
) -> None:
    url = small_proxy.url.replace("http://", "ws://") + SOCKET
    with connect(url, additional_headers={JWT_HEADER: token()}, open_timeout=10, max_size=None) as ws:
        for _ in range(3):
            ws.send(bytes(LIMIT // 2))
            assert ws.recv(timeout=10) == f"binary {LIMIT // 2}"
    [seen] = settled(small_proxy, upstream)
    assert seen.body_bytes == 3 * (LIMIT // 2) > LIMIT


def test_an_upgrade_envoy_does_not_do_is_an_ordinary_request_with_the_limit(
    token: Callable[..., str], small_proxy: OriginProxy, upstream: RecordingUpstream
) -> None:
    h2c = [("Connection", "Upgrade, HTTP2-Settings"), ("Upgrade", "h2c"),
           ("HTTP2-Settings", "AAMAAABkAAQAoAAAAAIAAAAA")]
    small = send(small_proxy, "POST", "/api/assets", [(JWT_HEADER, token()), *h2c], size=1024)
    assert small.status == 200
    big = send(small_proxy, "POST", "/api/socket.io/", [(JWT_HEADER, token()), *h2c])
    assert big.status == 413
    received = settled(small_proxy, upstream)
    assert [(s.path, s.body_bytes, s.complete) for s in received] == [("/api/assets", 1024, True)]
    assert not [s for s in received if "upgrade" in {k.lower() for k in s.headers}]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_the_headline_trick_at_the_real_limit(
    chunked: bool, token: Callable[..., str], proxy: OriginProxy, upstream: RecordingUpstream
) -> None:
    response = send(proxy, "POST", "/api/socket.io/../assets", [(JWT_HEADER, token()), *UPGRADE],
                    size=MAX_BODY_BYTES + 1, chunked=chunked)
    assert response.status == 403
    assert response.sent < MAX_BODY_BYTES
    assert settled(proxy, upstream) == []
