"""Scenarios only a cluster can prove: probes, node ports, the tunnel's route, persistence, the NAS, policies."""

from __future__ import annotations

import base64

from pytest_bdd import given, parsers, then, when

from immich_conformance.immich_client import ImmichClient
from immich_conformance.targets import Target

from .context import ScenarioContext

PEERS = {
    "the tunnel": "edge-standin",
    "Immich": "immich-server",
    "the origin proxy": "origin-proxy",
    "Postgres": "immich-postgres",
    "Redis": "immich-redis",
    "machine learning": "immich-machine-learning",
}


@then("every Deployment of the stack has all its pods Ready")
def all_available(target: Target) -> None:
    target.wait_available()
    deployments = target.deployments()
    assert {"immich-server", "immich-machine-learning", "immich-postgres", "immich-redis", "origin-proxy"} <= set(
        deployments)


@when("the suite lists the node ports of every Service")
def list_node_ports(ctx: ScenarioContext, target: Target) -> None:
    ctx.node_ports = target.node_ports()


@then("immich-server has its NodePort")
def server_node_port(ctx: ScenarioContext) -> None:
    assert ctx.node_ports["immich-server"], ctx.node_ports


@then("the origin proxy, Postgres, Redis and machine learning have no node port")
def no_other_node_ports(ctx: ScenarioContext) -> None:
    for service in ("origin-proxy", "immich-postgres", "immich-redis", "immich-machine-learning"):
        assert ctx.node_ports.get(service) == [], f"{service} has node ports {ctx.node_ports.get(service)}"


@then("the tunnel's only destination is the origin proxy Service")
def tunnel_destination(target: Target) -> None:
    assert target.tunnel_destinations() == ["origin-proxy:8080"]


def restart(ctx: ScenarioContext, target: Target, deployment: str) -> None:
    """Delete ``deployment``'s pods and wait for new ones; whatever happens, it is Ready again when the scenario
    ends (the Deployment makes new pods: the teardown waits for them when this wait failed)."""
    ctx.on_teardown(f"{deployment} Ready again", lambda: target.wait_available([deployment]))
    target.restart(deployment)


@when("the Postgres pod is deleted and a new one is Ready")
def restart_postgres(ctx: ScenarioContext, target: Target) -> None:
    restart(ctx, target, "immich-postgres")


@when("the immich-server pod is deleted and a new one is Ready")
def restart_server(ctx: ScenarioContext, target: Target) -> None:
    restart(ctx, target, "immich-server")


@then("Immich still has the photo with the same checksum")
def still_there(ctx: ScenarioContext, lan: ImmichClient) -> None:
    assert ctx.upload is not None and ctx.first_asset_id is not None, "no first upload"
    asset = lan.asset(ctx.first_asset_id)
    assert asset.status_code == 200, asset.text
    assert base64.b64decode(asset.json()["checksum"]) == ctx.upload.image.sha1()
    ctx.response = asset


@when("the NAS library is unmounted and immich-server restarts")
def unmount_nas(ctx: ScenarioContext, target: Target) -> None:
    target.unmount_nas()
    # Whatever the later steps do, the NAS comes back and Immich with it before the next scenario (nothing to do
    # when "the NAS library is mounted again" ran: mount_nas is False).
    ctx.on_teardown("the NAS mounted again and immich-server Ready on it",
                    lambda: target.mount_nas() and target.restart("immich-server"))
    ctx.restarted_at = target.restart_without_waiting("immich-server")


@then("immich-server does not become Ready and nothing is written where the NAS belongs")
def server_stays_down(ctx: ScenarioContext, target: Target) -> None:
    assert ctx.restarted_at is not None, "immich-server was not restarted"
    assert target.stays_unready("immich-server", since=ctx.restarted_at, seconds=20)
    assert not target.nas_root.exists(), "something created the NAS folder on the node's own disk"


@when("the NAS library is mounted again")
def mount_nas(target: Target) -> None:
    target.mount_nas()


@then("immich-server becomes Ready again")
def server_back(target: Target) -> None:
    target.restart("immich-server")


@given("the cluster enforces NetworkPolicies")
def policies_enforced(target: Target) -> None:
    target.require_network_policy_enforcement()


@when(parsers.parse("{source} connects to {destination}"))
def connect(ctx: ScenarioContext, target: Target, source: str, destination: str) -> None:
    ctx.connected = target.can_connect(PEERS[source], PEERS[destination])


@then(parsers.parse("the connection is {verdict}"))
def connection_verdict(ctx: ScenarioContext, verdict: str) -> None:
    assert ctx.connected == (verdict == "allowed")


@when("the suite asks the cluster to admit a privileged pod into the stack's namespace")
def ask_privileged_pod(ctx: ScenarioContext, target: Target) -> None:
    ctx.admission_refusal = target.admission_of_privileged_pod()


@then("the cluster refuses it, naming the stack's Pod Security policy")
def privileged_pod_refused(ctx: ScenarioContext) -> None:
    refusal = ctx.admission_refusal
    assert refusal, "the cluster would admit a privileged pod into the stack's namespace"
    assert "pod-security" in refusal and "privileged" in refusal, refusal
