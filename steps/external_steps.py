"""The public hostname: Cloudflare Access in front, nothing unauthenticated gets through."""

from __future__ import annotations

from urllib.parse import urlsplit

from pytest_bdd import parsers, then, when

from immich_conformance.immich_client import ImmichClient
from immich_conformance.targets import Target

from .context import ScenarioContext

VISITORS = {
    "browser": {
        "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130 Safari/537.36",
    },
    "API client": {"Accept": "application/json", "User-Agent": "Immich_Android_3.0.3"},
}


@when(parsers.parse('an unauthenticated {visitor} requests "{path}" on the public hostname'))
def unauthenticated_visit(ctx: ScenarioContext, target: Target, visitor: str, path: str) -> None:
    client = target.external.client(target.api_key, **VISITORS[visitor])  # a valid Immich key, no Access login
    try:
        separator = "&" if "?" in path else "?"
        ctx.path = path
        ctx.response = client.get(f"{path}{separator}{ctx.marker}=1")
    finally:
        client.close()


@when("an API client with the suite's service token asks who it is on the public hostname")
def external_me(ctx: ScenarioContext, external: ImmichClient) -> None:
    ctx.response = external.get(f"/api/users/me?{ctx.marker}=1")


@then("the answer is a refusal or a redirect to the Access login on the team domain")
def refused_or_login(ctx: ScenarioContext, target: Target) -> None:
    response = ctx.response
    assert response is not None
    if response.status_code in (301, 302, 303, 307, 308):
        location = urlsplit(response.headers["location"])
        assert location.scheme == "https" and location.hostname == target.team_domain, response.headers["location"]
        assert location.path.startswith("/cdn-cgi/access/login"), response.headers["location"]
    else:
        assert response.status_code in (401, 403), f"{response.status_code}: {response.text[:200]}"


def immich_would_log(path: str) -> bool:
    """Whether Immich logs this request (at debug) had it arrived: an API path, sent with the suite's valid key, so
    past Immich's guard. Immich never logs web-app paths such as /photos (docs/request-evidence.md)."""
    return urlsplit(path).path.startswith("/api/")


@then("neither the origin proxy nor Immich saw the request")
def nobody_saw_it(ctx: ScenarioContext, target: Target) -> None:
    # The origin proxy logs every request it receives, whatever its path; it is the tunnel's only way to Immich.
    assert not target.seen_by("origin-proxy", ctx.marker, ctx.marks), "the request reached the origin proxy"
    if immich_would_log(ctx.path):
        assert not target.seen_by("immich-server", ctx.marker, ctx.marks), "the request reached Immich"


@then("both the origin proxy and Immich saw the request")
def both_saw_it(ctx: ScenarioContext, target: Target) -> None:
    assert target.seen_by("origin-proxy", ctx.marker, ctx.marks), "the origin proxy has no record of the request"
    assert target.seen_by("immich-server", ctx.marker, ctx.marks), "Immich has no record of the request"
