"""Immich's live-update socket through the public hostname."""

from __future__ import annotations

from pytest_bdd import then, when

from immich_conformance.live_updates import open_live_updates
from immich_conformance.targets import Target

from .context import ScenarioContext


@when("the app opens the live-update socket through the public hostname with the suite's service token")
def socket_with_token(ctx: ScenarioContext, target: Target) -> None:
    headers = {**target.external.headers, **target.service_token_headers, "x-api-key": target.api_key}
    ctx.socket = open_live_updates(target.external.url, headers)


@when("the app opens the live-update socket through the public hostname without Access credentials")
def socket_without_token(ctx: ScenarioContext, target: Target) -> None:
    headers = {**target.external.headers, "x-api-key": target.api_key}
    ctx.socket = open_live_updates(target.external.url, headers)


@then("the socket opens and the server announces its version")
def socket_opens(ctx: ScenarioContext) -> None:
    assert ctx.socket is not None and ctx.socket.opened, ctx.socket
    assert ctx.socket.first_event is not None, ctx.socket
    name, version = ctx.socket.first_event
    assert name == "on_server_version"
    assert {"major", "minor", "patch"} <= set(version)


@then("the socket is refused")
def socket_refused(ctx: ScenarioContext) -> None:
    assert ctx.socket is not None and not ctx.socket.opened, ctx.socket
