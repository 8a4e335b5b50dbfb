"""Websockets through the edge: refused without credentials, otherwise proxied both ways with closes propagated."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import jwt
import pytest

from immich_conformance.limits import JWT_HEADER
from immich_conformance.procs import wait_until

from .support import AUD, PUBLIC_HOST, SERVICE_HEADERS, TEAM_DOMAIN, TOKEN_ID, EdgeHandle, RecordingOrigin, SeenRequest

SOCKET_PATH = "/api/socket.io/?EIO=4&transport=websocket"


async def _session(edge: EdgeHandle, headers: dict[str, str]) -> dict[str, Any]:
    """Open a websocket through the edge, exchange frames, and close it; report what happened."""
    result: dict[str, Any] = {}
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"{edge.url}{SOCKET_PATH}", headers={"Host": PUBLIC_HOST, **headers},
                                      protocols=("echo",), autoping=True) as ws:
            result["protocol"] = ws.protocol
            await ws.send_str("hello")
            result["text"] = (await ws.receive(timeout=5)).data
            await ws.send_bytes(b"\x00\x01binary")
            result["binary"] = (await ws.receive(timeout=5)).data
            await ws.send_str("close:4002")  # the origin closes with 4002
            msg = await ws.receive(timeout=5)
            result["close"] = (msg.type, msg.data)
        async with session.ws_connect(f"{edge.url}{SOCKET_PATH}", headers={"Host": PUBLIC_HOST, **headers}) as ws:
            await ws.send_str("second")
            await ws.receive(timeout=5)
            await ws.close(code=4001, message=b"client leaves")
    return result


def test_a_websocket_with_a_service_token_is_proxied_both_ways(edge: EdgeHandle, origin: RecordingOrigin) -> None:
    result = asyncio.run(_session(edge, SERVICE_HEADERS))
    assert result["protocol"] == "echo"
    assert result["text"] == "hello" and result["binary"] == b"\x00\x01binary"
    assert result["close"] == (aiohttp.WSMsgType.CLOSE, 4002), "the origin's close code reaches the client"

    def both_closed() -> list[SeenRequest] | None:
        seen = origin.seen()
        return seen if len(seen) == 2 and all(r.finished for r in seen) else None

    first, second = wait_until(both_closed, timeout=10, what="both sockets closed at the origin")
    assert first.websocket_messages == ["hello", b"\x00\x01binary", "close:4002"]
    assert second.websocket_close_code == 4001, "the client's close code reaches the origin"
    assert first.target == SOCKET_PATH
    assert "CF-Access-Client-Secret" not in first.headers
    claims = jwt.decode(first.headers[JWT_HEADER], options={"verify_signature": False})
    assert claims["common_name"] == TOKEN_ID and claims["aud"] == [AUD]
    assert claims["iss"] == f"https://{TEAM_DOMAIN}"
    assert jwt.get_unverified_header(first.headers[JWT_HEADER])["kid"] == edge.ring.active.kid


@pytest.mark.parametrize(("headers", "status"), [({}, 302), ({**SERVICE_HEADERS, "CF-Access-Client-Secret": "x"}, 401)],
                         ids=["no-credentials", "bad-token"])
def test_a_websocket_without_valid_credentials_is_refused(edge: EdgeHandle, origin: RecordingOrigin,
                                                          headers: dict[str, str], status: int) -> None:
    handshake = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                 "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    with edge.client(headers={**handshake, **headers}) as client:  # never follows the redirect
        resp = client.get(SOCKET_PATH)
    assert resp.status_code == status
    assert origin.seen() == []
