"""The origin proxy, as cloudflared reaches it: a valid Access token or nothing."""

from __future__ import annotations

from pytest_bdd import parsers, then, when

from immich_conformance.limits import JWT_HEADER
from immich_conformance.origin_proxy import forwarded_upstream
from immich_conformance.targets import Target
from immich_conformance.token_forgery import ORIGIN_TOKENS

from .context import ScenarioContext


@when(parsers.parse("a request with {token} reaches the origin proxy"))
def request_at_origin(ctx: ScenarioContext, target: Target, token: str) -> None:
    jwt = ORIGIN_TOKENS[token](target.access_keys(), target.aud)
    client = target.origin.client(target.api_key, **({JWT_HEADER: jwt} if jwt else {}))
    try:
        ctx.response = client.get(f"/api/users/me?{ctx.marker}=1")
    finally:
        client.close()


@then(parsers.parse("the proxy refuses it with {status:d}"))
def proxy_refuses(ctx: ScenarioContext, status: int) -> None:
    assert ctx.response is not None and ctx.response.status_code == status, ctx.response


@then("Immich did not see the request")
def immich_did_not_see(ctx: ScenarioContext, target: Target) -> None:
    # Two kinds of evidence (docs/request-evidence.md): the proxy's own access log says it answered the request
    # itself, and the request (an API call with the suite's valid key) is one Immich logs at debug had it arrived.
    forwarded = [line for line in target.log_lines_with("origin-proxy", ctx.marker, ctx.marks)
                 if forwarded_upstream(line)]
    assert not forwarded, f"the origin proxy forwarded the request to Immich: {forwarded[0]}"
    assert not target.seen_by("immich-server", ctx.marker, ctx.marks), "the request reached Immich"


@then("Immich answers it")
def immich_answers(ctx: ScenarioContext, target: Target) -> None:
    assert ctx.response is not None and ctx.response.status_code == 200, ctx.response.text
    assert ctx.response.json().get("id")
    assert target.seen_by("immich-server", ctx.marker, ctx.marks)
