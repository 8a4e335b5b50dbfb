"""What Immich's HTTP layers add around its routes, as a client sees them on the wire.

- **Express** (everything but socket.io): ``X-Powered-By: Express`` on every response, and for a response sent with
  its body at once (``res.send``/``res.json``: every JSON answer, errors included) a strong ETag, since Immich sets
  ``app.set('etag', 'strong')``: ``"<length in hex>-<first 27 characters of the body's base64 SHA-1>"``. A ``GET``
  or ``HEAD`` answered 2xx whose ``If-None-Match`` names that ETag (or is ``*``), without ``Cache-Control:
  no-cache``, gets 304 with no body, its other headers kept (Express' ``req.fresh``). Files the server streams carry
  the ETag of their own sender and are left alone here.
- **engine.io** (``/api/socket.io/``): it takes its requests off the HTTP server before Express sees them, so they
  carry neither header, and it checks a plain HTTP request before any socket.io code runs. Immich allows the
  websocket transport only, so a long-polling handshake gets ``400 {"code":0,"message":"Transport unknown"}``; a
  handshake that is not a GET ``{"code":2,"message":"Bad handshake method"}``; a websocket handshake that does not
  ask to upgrade ``{"code":3,"message":"Bad request"}``; an unknown session id ``{"code":1,"message":"Session ID
  unknown"}``. An upgrade request for another transport gets a bare ``400 Bad Request`` whose text is the message.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable, Mapping

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from immich_conformance.double.realtime import SOCKET_PATH

ENGINE_PREFIX = f"{SOCKET_PATH}/"  # engine.io's own check: the path with its trailing slash, as a prefix of the URL
POWERED_BY = ("X-Powered-By", "Express")
NO_CACHE = re.compile(r"(?:^|,)\s*?no-cache\s*?(?:,|$)")
# engine.io's protocol errors (Server.errors / Server.errorMessages)
UNKNOWN_TRANSPORT, UNKNOWN_SID, BAD_HANDSHAKE_METHOD, BAD_REQUEST = 0, 1, 2, 3
ENGINE_MESSAGES = {UNKNOWN_TRANSPORT: "Transport unknown", UNKNOWN_SID: "Session ID unknown",
                   BAD_HANDSHAKE_METHOD: "Bad handshake method", BAD_REQUEST: "Bad request"}
ENGINE_TRANSPORTS = ("websocket",)  # Immich's websocket adapter


def is_engine_request(request: web.BaseRequest) -> bool:
    return request.path_qs.startswith(ENGINE_PREFIX)


def strong_etag(body: bytes) -> str:
    """The ETag Express' ``etag`` package gives a body (strong)."""
    digest = base64.b64encode(hashlib.sha1(body).digest()).decode()[:27]
    return f'"{len(body):x}-{digest}"'


def is_fresh(request_headers: Mapping[str, str], etag: str) -> bool:
    """Express' ``fresh``: whether the client's copy (``If-None-Match``) is still the response's (no
    ``Last-Modified`` is ever sent with these responses, so ``If-Modified-Since`` alone never makes one fresh)."""
    none_match = request_headers.get("If-None-Match")
    if not none_match:
        return False
    if NO_CACHE.search(request_headers.get("Cache-Control", "")):
        return False
    matches = (token.strip() for token in none_match.split(","))
    if none_match.strip() != "*" and not any(m in (etag, f"W/{etag}") or f"W/{m}" == etag for m in matches):
        return False
    return "If-Modified-Since" not in request_headers


def engine_refusal(request: web.BaseRequest, known_sessions: Callable[[str], bool]) -> web.Response | None:
    """engine.io's ``verify`` for a request the double's socket.io server would answer in its own words: the refusal
    Immich's engine.io gives, or None to let the request through."""
    transport = request.query.get("transport", "")
    upgrade = request.headers.get("Upgrade", "").lower() == "websocket" and \
        "upgrade" in request.headers.get("Connection", "").lower()
    if transport not in ENGINE_TRANSPORTS:
        code = UNKNOWN_TRANSPORT
    elif (sid := request.query.get("sid")) is not None:
        if known_sessions(sid):
            return None
        code = UNKNOWN_SID
    elif request.method != "GET":
        code = BAD_HANDSHAKE_METHOD
    elif not upgrade:
        code = BAD_REQUEST
    else:
        return None
    if upgrade:  # engine.io's abortUpgrade: a bare reply on the socket, then it is closed
        return web.Response(status=400, text=ENGINE_MESSAGES[code], content_type="text/html",
                            headers={"Connection": "close"})
    return web.Response(status=400, content_type="application/json",
                        body=json.dumps({"code": code, "message": ENGINE_MESSAGES[code]},
                                        separators=(",", ":")).encode())


def express_middleware(known_sessions: Callable[[str], bool]) -> Middleware:
    """The outermost middleware: engine.io's checks for its requests, Express' ETag and 304 for the rest.
    ``known_sessions`` says whether an engine.io session id is open."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if is_engine_request(request):
            return engine_refusal(request, known_sessions) or await handler(request)
        response = await handler(request)
        if not isinstance(response, web.Response) or response.prepared or not isinstance(response.body, bytes):
            return response
        etag = response.headers.setdefault("ETag", strong_etag(response.body))
        if request.method in ("GET", "HEAD") and 200 <= response.status < 300 and is_fresh(request.headers, etag):
            return not_modified(response)
        return response

    return middleware


def not_modified(response: web.Response) -> web.Response:
    """Express' 304: the response's headers (cookies too) without its body and what describes it."""
    dropped = {"content-type", "content-length", "transfer-encoding"}
    answer = web.Response(status=304, headers={k: v for k, v in response.headers.items() if k.lower() not in dropped})
    for name, morsel in response.cookies.items():
        answer.cookies[name] = morsel
    return answer


async def add_powered_by(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """``on_response_prepare``: Express' own header, on whatever Express sends (every response but engine.io's)."""
    if not is_engine_request(request):
        response.headers.setdefault(*POWERED_BY)
