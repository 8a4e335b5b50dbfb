"""The public application listener: host check, body limit, Access, then the request goes on to the origin.

Bodies are streamed both ways in chunks; no body is held whole in memory. A request body that crosses the limit while
it streams aborts the origin connection before the excess is sent, so the origin never receives a complete request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from immich_conformance.edge import pages
from immich_conformance.edge.access import Granted, Refused, decide
from immich_conformance.edge.config import EdgeConfig
from immich_conformance.edge.keys import KeyRingSource
from immich_conformance.limits import ACCESS_COOKIE, JWT_HEADER

log = logging.getLogger("edge.app")

HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te", "trailer",
    "trailers", "transfer-encoding", "upgrade",
})
# headers the edge sets itself toward the origin; whatever the client sent under these names is dropped
EDGE_SET = frozenset({"host", "content-length", "expect", "x-forwarded-proto", "x-real-ip", "true-client-ip"})
WEBSOCKET_HANDSHAKE = frozenset({
    "sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions", "sec-websocket-protocol",
    "sec-websocket-accept",
})


UNSENDABLE_CLOSE_CODES = frozenset({0, 1005, 1006, 1015})


class BodyTooLarge(Exception):
    """The request body crossed the edge's limit while it was being forwarded."""


@dataclass
class BodyState:
    limit: int
    sent: int = 0
    too_large: bool = False
    complete: bool = False


def new_ray(colo: str) -> str:
    return f"{secrets.token_hex(8)}-{colo}"


def _bare_host(host: str) -> str:
    host = host.strip().lower()
    if host.endswith(":443"):
        host = host[:-4]
    return host.rstrip(".")


def is_websocket_upgrade(request: web.Request) -> bool:
    upgrade = request.headers.get("Upgrade", "").lower()
    connection = {t.strip().lower() for t in request.headers.get("Connection", "").split(",")}
    return request.method == "GET" and upgrade == "websocket" and "upgrade" in connection


async def _stream_body(request: web.Request, state: BodyState) -> AsyncIterator[bytes]:
    if request.headers.get("Expect", "").lower() == "100-continue" and request.version >= aiohttp.HttpVersion11:
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0
    async for chunk in request.content.iter_any():
        if state.sent + len(chunk) > state.limit:
            state.too_large = True
            raise BodyTooLarge(f"request body passed {state.limit} bytes")
        state.sent += len(chunk)
        yield chunk
    state.complete = True


async def _no_continue(request: web.Request) -> None:
    """Expect: 100-continue is answered only once the request is accepted and its body is wanted."""
    return None


class AppProxy:
    def __init__(self, config: EdgeConfig, keys: KeyRingSource, counters: Counter[str]) -> None:
        self.config = config
        self.keys = keys
        self.counters = counters
        self.origin = URL(config.origin_url)
        self.session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, force_close=False),
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            timeout=aiohttp.ClientTimeout(total=None, connect=10, sock_read=self.config.origin_read_timeout),
            max_line_size=16384,
            max_field_size=32768,
        )

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle, expect_handler=_no_continue)
        return app

    def _origin_url(self, request: web.Request, scheme: str) -> URL:
        target = request.raw_path
        if not target.startswith("/"):  # absolute-form request target: keep only its path and query
            target = request.rel_url.raw_path_qs
        # concatenated, never joined: a target such as "//host/x" must stay a path on the origin
        return URL(f"{scheme}://{self.origin.raw_authority}{target}", encoded=True)

    # --- one request ---------------------------------------------------------------------------------------------
    def _refuse(self, reason: str, response: web.StreamResponse, request: web.Request, ray: str) -> web.StreamResponse:
        self.counters["refused"] += 1
        self.counters[f"refused {response.status}"] += 1
        log.info("%s %s %s -> %d refused (%s)", ray, request.method, request.path, response.status, reason)
        return response

    async def handle(self, request: web.Request) -> web.StreamResponse:
        config = self.config
        ray = new_ray(config.colo)
        host = request.headers.get("Host", "")
        if _bare_host(host) != config.public_hostname:
            return self._refuse(f"host {host!r}", pages.unknown_host(host, ray), request, ray)

        length_text = request.headers.get("Content-Length")
        if length_text is not None:
            if not length_text.strip().isdigit():
                return self._refuse("bad Content-Length", web.Response(status=400, headers={"Cf-Ray": ray}),
                                    request, ray)
            if int(length_text) > config.max_body_bytes:
                return self._refuse(f"Content-Length {length_text} over {config.max_body_bytes}",
                                    pages.too_large(ray), request, ray)

        decision = decide(request.method, request.raw_path, request.headers, config, self.keys.current())
        if isinstance(decision, Refused):
            if decision.status == 302 and decision.location:
                return self._refuse(decision.reason, pages.login_redirect(decision.location, ray), request, ray)
            return self._refuse(decision.reason, pages.access_denied(decision.status, decision.reason, ray),
                                request, ray)

        if is_websocket_upgrade(request):
            return await self._forward_websocket(request, decision, ray)
        return await self._forward_http(request, decision, ray)

    def _origin_headers(self, request: web.Request, granted: Granted, ray: str, *, websocket: bool) -> CIMultiDict[str]:
        named_in_connection = {t.strip().lower() for t in request.headers.get("Connection", "").split(",")}
        headers: CIMultiDict[str] = CIMultiDict()
        for name, value in request.headers.items():
            key = name.lower()
            if key in HOP_BY_HOP or key in EDGE_SET or key in named_in_connection or key.startswith("cf-"):
                continue  # cf-*: Cf-Access-Jwt-Assertion, CF-Access-Client-Id/Secret, Cf-Connecting-Ip, Cf-Ray ...
            if websocket and key in WEBSOCKET_HANDSHAKE:
                continue
            headers.add(name, value)
        client_ip = request.remote or "127.0.0.1"
        headers["Host"] = self.config.public_hostname
        headers[JWT_HEADER] = granted.assertion
        if granted.email:
            headers["Cf-Access-Authenticated-User-Email"] = granted.email
        headers["Cf-Connecting-Ip"] = client_ip
        forwarded_for = ", ".join(request.headers.getall("X-Forwarded-For", []))
        headers["X-Forwarded-For"] = f"{forwarded_for}, {client_ip}" if forwarded_for else client_ip
        headers["X-Forwarded-Proto"] = "https"
        headers["Cf-Ray"] = ray
        headers["Cf-Visitor"] = '{"scheme":"https"}'
        loop = ", ".join(request.headers.getall("CDN-Loop", []))
        headers["CDN-Loop"] = f"{loop}, cloudflare" if loop else "cloudflare"
        return headers

    def _client_response(self, upstream: aiohttp.ClientResponse, granted: Granted, ray: str) -> web.StreamResponse:
        resp = web.StreamResponse(status=upstream.status, reason=upstream.reason)
        named_in_connection = {t.strip().lower() for t in upstream.headers.get("Connection", "").split(",")}
        for name, value in upstream.headers.items():
            key = name.lower()
            if key in HOP_BY_HOP or key in named_in_connection or key.startswith("x-accel-") or key == "server":
                continue
            resp.headers.add(name, value)
        resp.headers["Server"] = pages.SERVER
        resp.headers["Cf-Ray"] = ray
        if granted.set_cookie:
            resp.headers.add("Set-Cookie", f"{ACCESS_COOKIE}={granted.set_cookie}; Path=/; Domain="
                                           f"{self.config.public_hostname}; Secure; HttpOnly; SameSite=None")
        return resp

    async def _forward_http(self, request: web.Request, granted: Granted, ray: str) -> web.StreamResponse:
        assert self.session is not None
        state = BodyState(limit=self.config.max_body_bytes)
        headers = self._origin_headers(request, granted, ray, websocket=False)
        body: AsyncIterator[bytes] | None = None
        if request.body_exists:
            body = _stream_body(request, state)
            if "Content-Length" in request.headers:
                headers["Content-Length"] = request.headers["Content-Length"]
        elif request.method not in ("GET", "HEAD", "OPTIONS", "TRACE") and "Content-Length" in request.headers:
            headers["Content-Length"] = "0"
        url = self._origin_url(request, "http")
        resp: web.StreamResponse | None = None
        try:
            async with self.session.request(request.method, url, headers=headers, data=body,
                                            allow_redirects=False) as upstream:
                resp = self._client_response(upstream, granted, ray)
                await resp.prepare(request)
                async for chunk in upstream.content.iter_any():
                    await resp.write(chunk)
                await resp.write_eof()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure toward the origin ends the same ways
            return self._failed(request, resp, state, ray, exc)
        self.counters["forwarded"] += 1
        log.info("%s %s %s -> %d forwarded (%s %s; %d body bytes)", ray, request.method, request.path,
                 resp.status, granted.via, granted.who, state.sent)
        return resp

    def _failed(self, request: web.Request, resp: web.StreamResponse | None, state: BodyState, ray: str,
                exc: Exception) -> web.StreamResponse:
        started = resp is not None and resp.prepared
        if state.too_large:
            self.counters["refused"] += 1
            self.counters["refused 413"] += 1
            log.info("%s %s %s -> 413 refused (streamed body passed %d bytes; origin connection aborted)",
                     ray, request.method, request.path, self.config.max_body_bytes)
            if not started:
                return pages.too_large(ray)
        else:
            self.counters["failed"] += 1
            log.warning("%s %s %s -> origin exchange failed after %d body bytes: %r",
                        ray, request.method, request.path, state.sent, exc)
            if not started:
                if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
                    return pages.origin_timeout(ray)
                return pages.bad_gateway(ray)
        # the response is already under way: the client connection is cut so the client sees an incomplete answer
        if request.transport is not None:
            request.transport.abort()
        assert resp is not None
        return resp

    # --- websockets ------------------------------------------------------------------------------------------------
    async def _forward_websocket(self, request: web.Request, granted: Granted, ray: str) -> web.StreamResponse:
        assert self.session is not None
        headers = self._origin_headers(request, granted, ray, websocket=True)
        protocols = [p.strip() for h in request.headers.getall("Sec-WebSocket-Protocol", []) for p in h.split(",")
                     if p.strip()]
        url = self._origin_url(request, "ws")
        try:
            upstream = await self.session.ws_connect(
                url, headers=headers, protocols=protocols, autoping=False, autoclose=True, max_msg_size=0,
                compress=0, timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=10.0),
            )
        except aiohttp.WSServerHandshakeError as exc:
            self.counters["forwarded"] += 1
            log.info("%s GET %s -> %d websocket refused by the origin", ray, request.path, exc.status)
            resp = web.Response(status=exc.status, text=f"{exc.status} {exc.message}\n")
            resp.headers["Server"] = pages.SERVER
            resp.headers["Cf-Ray"] = ray
            return resp
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            self.counters["failed"] += 1
            log.warning("%s GET %s -> websocket to the origin failed: %r", ray, request.path, exc)
            return pages.bad_gateway(ray)

        client = web.WebSocketResponse(protocols=[upstream.protocol] if upstream.protocol else (), autoping=False,
                                       autoclose=True, max_msg_size=0, compress=False)
        client.headers["Server"] = pages.SERVER
        client.headers["Cf-Ray"] = ray
        try:
            await client.prepare(request)
            self.counters["forwarded"] += 1
            self.counters["websockets"] += 1
            log.info("%s GET %s -> 101 websocket forwarded (%s %s)", ray, request.path, granted.via, granted.who)
            to_origin = asyncio.create_task(_pump(client, upstream))
            to_client = asyncio.create_task(_pump(upstream, client))
            done, pending = await asyncio.wait({to_origin, to_client}, return_when=asyncio.FIRST_COMPLETED)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.gather(*pending, return_exceptions=True), timeout=10.0)
            for task in (to_origin, to_client):
                task.cancel()
        finally:
            await upstream.close()
            await client.close()
        log.info("%s websocket %s closed (client code %s, origin code %s)", ray, request.path, client.close_code,
                 upstream.close_code)
        return client


async def _pump(
    source: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
    sink: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
) -> None:
    """Copy frames from source to sink until source closes; then close sink with the same code."""
    while True:
        msg = await source.receive()
        kind = msg.type
        try:
            if kind == aiohttp.WSMsgType.TEXT:
                await sink.send_str(msg.data)
            elif kind == aiohttp.WSMsgType.BINARY:
                await sink.send_bytes(msg.data)
            elif kind == aiohttp.WSMsgType.PING:
                await sink.ping(msg.data)
            elif kind == aiohttp.WSMsgType.PONG:
                await sink.pong(msg.data)
            elif kind == aiohttp.WSMsgType.CLOSE:
                code = int(msg.data or 0)
                if code in UNSENDABLE_CLOSE_CODES:  # reserved codes report a state; they never go on the wire
                    code = aiohttp.WSCloseCode.OK
                await sink.close(code=code, message=(msg.extra or "").encode())
                return
            else:  # CLOSING, CLOSED, ERROR
                code = aiohttp.WSCloseCode.INTERNAL_ERROR if kind == aiohttp.WSMsgType.ERROR else (
                    source.close_code or aiohttp.WSCloseCode.OK)
                await sink.close(code=code)
                return
        except (ConnectionError, RuntimeError, aiohttp.ClientError):
            await sink.close(code=aiohttp.WSCloseCode.GOING_AWAY)
            return
