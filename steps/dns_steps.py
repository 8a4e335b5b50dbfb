"""Split-horizon DNS for the public hostname."""

from __future__ import annotations

import ipaddress
import socket

from pytest_bdd import then, when

from immich_conformance.targets import Target

from .context import Resolution, ScenarioContext


@when("the suite resolves the public hostname")
def resolve_public(ctx: ScenarioContext, target: Target) -> None:
    side, node = target.split_horizon()
    infos = socket.getaddrinfo(target.public_hostname, 443, proto=socket.IPPROTO_TCP)
    ctx.resolution = Resolution(side, node, sorted({info[4][0] for info in infos}))


@then("on the LAN it is the node's address, and from the internet it is no private address")
def resolved_as_expected(ctx: ScenarioContext) -> None:
    assert ctx.resolution is not None, "the public hostname was not resolved"
    side, node, addresses = ctx.resolution.side, ctx.resolution.node, ctx.resolution.addresses
    if side == "lan":
        assert addresses == [node], f"on the LAN the public hostname resolves to {addresses}, not the node {node}"
    else:
        private = [a for a in addresses if ipaddress.ip_address(a).is_private]
        assert not private, f"from the internet the public hostname resolves to private addresses {private}"
