"""The LAN path: the NodePort, guarded by Immich's own login."""

from __future__ import annotations

from pytest_bdd import parsers, then, when

from immich_conformance.immich_client import ImmichClient
from immich_conformance.targets import Target

from .context import ScenarioContext


@when("a device on the LAN pings the server")
def lan_ping(ctx: ScenarioContext, lan: ImmichClient) -> None:
    ctx.response = lan.ping()


@when("a device on the LAN asks who it is without credentials")
def lan_me_anonymous(ctx: ScenarioContext, lan: ImmichClient) -> None:
    ctx.response = lan.me(authenticated=False)


@when("a device on the LAN asks who it is with the suite's API key")
def lan_me(ctx: ScenarioContext, lan: ImmichClient) -> None:
    ctx.response = lan.me()


@when(parsers.parse('a device on the LAN fetches "{path}"'))
def lan_fetch(ctx: ScenarioContext, lan: ImmichClient, path: str) -> None:
    ctx.response = lan.get(path, authenticated=False)


@then(parsers.parse('the server answers "{word}"'))
def answers_word(ctx: ScenarioContext, word: str) -> None:
    assert ctx.response is not None and ctx.response.status_code == 200, ctx.response
    assert ctx.response.json() == {"res": word}


@then(parsers.parse('Immich itself refuses it with {status:d} "{message}"'))
def immich_refuses(ctx: ScenarioContext, status: int, message: str) -> None:
    assert ctx.response is not None
    assert ctx.response.status_code == status, ctx.response.text
    assert ctx.response.json().get("message") == message


@then("Immich answers with the suite's user")
def answers_user(ctx: ScenarioContext, target: Target) -> None:
    assert ctx.response is not None and ctx.response.status_code == 200, ctx.response.text
    user = ctx.response.json()
    assert user.get("id") and user.get("email"), user


@then(parsers.parse('it is pointed at the API endpoint "{endpoint}"'))
def well_known_points(ctx: ScenarioContext, endpoint: str) -> None:
    assert ctx.response is not None and ctx.response.status_code == 200
    assert ctx.response.json()["api"]["endpoint"] == endpoint
