"""NetworkPolicy enforced for real, on the offline cluster (kube-router's policy controller).

The ci overlay is deployed into a namespace of the test's own. Then:
- the whole traffic matrix (every source workload to every Service port) is judged three ways: the project's static
  evaluator, cyclonus, and real connections from inside the pods; any disagreement fails with the pair and the three
  verdicts, and the matrix goes into the HTML report as a table;
- each policy of stack/ is dropped or widened in turn, and the policy scenario that guards it
  (features/cluster.feature, run through its own step functions) is shown to fail; the policy is then put back and the
  scenario passes again;
- the stack's Pod Security policy refuses a privileged pod (the cluster.feature scenario's steps), and with its
  binding taken away the same steps fail.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from immich_conformance import REPO_ROOT
from immich_conformance.conditions import Condition
from immich_conformance.netpolicy.judge import judge
from immich_conformance.netpolicy.matrix import disagreements, html_table
from immich_conformance.offline_cluster import OfflineCluster
from immich_conformance.procs import WaitTimeout, wait_until
from immich_conformance.targets.cluster import ClusterTarget
from steps.cluster_steps import PEERS, ask_privileged_pod, connect, connection_verdict, privileged_pod_refused
from steps.context import ScenarioContext

from ..shared_cluster import SharedCluster
from .fixtures import deployed_stack

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="the offline cluster needs root (containerd, kubelet, iptables)"),
]

NAMESPACE = "immich-policies"
SCRATCH = PurePosixPath("/var/tmp/immich-conformance-policies")
FLIP_SECONDS = 30.0
POLICY_SCENARIO = "Network policies allow <source> to reach <destination> only as designed"


def scenario_rows() -> dict[tuple[str, str], str]:
    """The policy scenario's Examples table: (source, destination) -> verdict."""
    text = (REPO_ROOT / "features" / "cluster.feature").read_text()
    table = text[text.index(POLICY_SCENARIO):].split("Examples:", 1)[1]
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in table.strip().splitlines()
            if line.strip().startswith("|")]
    return {(source, destination): verdict for source, destination, verdict in rows[1:]}


@dataclass(frozen=True)
class Mutation:
    name: str
    policy: str
    change: Callable[[dict[str, Any]], dict[str, Any] | None]  # the policy -> its replacement (None: dropped)
    row: tuple[str, str]  # the scenario row that must fail

    def __str__(self) -> str:
        return self.name


def drop(_: dict[str, Any]) -> None:
    return None


def allow_everything(policy: dict[str, Any]) -> dict[str, Any]:
    widened = copy.deepcopy(policy)
    widened["spec"]["ingress"] = [{}]
    widened["spec"]["egress"] = [{}]
    return widened


# Each policy of stack/ that a probe between the stack's pods can see. Not here, with the reason: the LAN's and the
# internet's ipBlocks (immich-server-from-lan, machine-learning-egress, the public part of origin-proxy-egress and
# cloudflared-egress): their peers are outside the cluster, which the static proof covers (tests/stack); and
# cloudflared-egress, which the ci overlay replaces by the edge stand-in's. A single-layer widening of one pod's
# ingress or egress is not visible by design (the other layer still denies it): the widening shown is default-deny's,
# which opens both layers at once.
MUTATIONS = [
    Mutation("default-deny made allow-all", "default-deny", allow_everything, ("the tunnel", "Postgres")),
    Mutation("allow-dns dropped", "allow-dns", drop, ("the tunnel", "the origin proxy")),
    Mutation("origin-proxy-ingress dropped", "origin-proxy-ingress", drop, ("the tunnel", "the origin proxy")),
    Mutation("origin-proxy-egress dropped", "origin-proxy-egress", drop, ("the origin proxy", "Immich")),
    Mutation("immich-server-from-proxy dropped", "immich-server-from-proxy", drop, ("the origin proxy", "Immich")),
    Mutation("immich-server-egress dropped", "immich-server-egress", drop, ("Immich", "Postgres")),
    Mutation("postgres-ingress dropped", "postgres-ingress", drop, ("Immich", "Postgres")),
    Mutation("redis-ingress dropped", "redis-ingress", drop, ("Immich", "Redis")),
    Mutation("machine-learning-ingress dropped", "machine-learning-ingress", drop, ("Immich", "machine learning")),
    Mutation("edge stand-in's egress dropped (the tunnel's)", "edge-standin-egress", drop,
             ("the tunnel", "the origin proxy")),
]


@pytest.fixture(scope="module")
def target(offline_cluster: SharedCluster) -> Iterator[ClusterTarget]:
    yield from deployed_stack(NAMESPACE, SCRATCH)


@pytest.fixture(scope="module")
def cyclonus() -> Path:
    binary = OfflineCluster(progress=print).builder.binary("cyclonus")
    assert binary.is_file(), "cyclonus is built with the offline cluster's parts"
    return binary


def test_the_traffic_matrix_agrees_three_ways(target: ClusterTarget, cyclonus: Path, extras: list) -> None:
    import pytest_html

    rows = judge(target.kube, cyclonus)
    extras.append(pytest_html.extras.html(html_table(rows)))
    print(f"traffic matrix: {len(rows)} pairs, {sum(r.verdicts['probe'] is True for r in rows)} allowed")
    assert not disagreements(rows), "\n".join(disagreements(rows))
    allowed = {(r.pair.source, r.pair.service) for r in rows if r.verdicts["probe"]}
    assert ("edge-standin", "origin-proxy") in allowed and ("immich-server", "immich-postgres") in allowed
    assert ("edge-standin", "immich-postgres") not in allowed, "the matrix must hold denied pairs too"


def _clean(obj: dict[str, Any]) -> dict[str, Any]:
    """An object as read from the cluster, reduced to what applying it again needs (no server-set fields)."""
    meta = obj["metadata"]
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items()
                   if k != "kubectl.kubernetes.io/last-applied-configuration"}
    kept = {key: meta[key] for key in ("name", "namespace") if key in meta}
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"],
            "metadata": {**kept, "labels": meta.get("labels") or {}, "annotations": annotations},
            "spec": obj["spec"]}


def _apply(target: ClusterTarget, policy: dict[str, Any]) -> None:
    target.kube.run("apply", "-f", "-", stdin=yaml.safe_dump(policy))


def _wait_verdict(target: ClusterTarget, row: tuple[str, str], allowed: bool, why: str) -> None:
    source, destination = PEERS[row[0]], PEERS[row[1]]
    wait_until(lambda: target.can_connect(source, destination) == allowed, timeout=FLIP_SECONDS, interval=1.0,
               what=f"{row[0]} -> {row[1]} {'allowed' if allowed else 'denied'} {why}")


def privileged_pod_admitted(target: ClusterTarget, *, admitted: bool = True) -> Condition:
    """The cluster would admit a privileged pod into the stack's namespace (or, ``admitted=False``, refuses it)."""
    return lambda: (target.admission_of_privileged_pod() == "") == admitted


@pytest.mark.parametrize("mutation", MUTATIONS, ids=str)
def test_each_policy_change_makes_its_scenario_fail(target: ClusterTarget, mutation: Mutation) -> None:
    rows = scenario_rows()
    assert mutation.row in rows, f"{mutation.row} is not a row of the policy scenario"
    verdict = rows[mutation.row]
    original = _clean(target.kube.get("networkpolicies.networking.k8s.io", mutation.policy))
    replacement = mutation.change(copy.deepcopy(original))
    try:
        if replacement is None:
            target.kube.run("delete", "networkpolicy", mutation.policy)
        else:
            _apply(target, replacement)
        try:
            _wait_verdict(target, mutation.row, verdict != "allowed", f"once {mutation.name}")
        except WaitTimeout:
            pytest.fail(f"{mutation.name}: the scenario row {mutation.row} still says {verdict} after "
                        f"{FLIP_SECONDS:.0f} s, so this change to the policy would go unnoticed")
        ctx = ScenarioContext()
        connect(ctx, target, *mutation.row)
        with pytest.raises(AssertionError):
            connection_verdict(ctx, verdict)
    finally:
        _apply(target, original)
    _wait_verdict(target, mutation.row, verdict == "allowed", "again once the policy is back")
    ctx = ScenarioContext()
    connect(ctx, target, *mutation.row)
    connection_verdict(ctx, verdict)


def test_a_privileged_pod_is_refused_and_without_the_binding_the_scenario_fails(target: ClusterTarget) -> None:
    ctx = ScenarioContext()
    ask_privileged_pod(ctx, target)
    privileged_pod_refused(ctx)
    binding = f"{NAMESPACE}-pod-security"
    kind = "validatingadmissionpolicybindings.admissionregistration.k8s.io"
    kept = _clean(target.kube.get(kind, binding, namespaced=False))
    target.kube.run("delete", kind, binding, namespaced=False)
    try:
        wait_until(privileged_pod_admitted(target), timeout=FLIP_SECONDS, interval=1.0,
                   what="a privileged pod admitted once the policy's binding is gone")
        ctx = ScenarioContext()
        ask_privileged_pod(ctx, target)
        with pytest.raises(AssertionError, match="would admit a privileged pod"):
            privileged_pod_refused(ctx)
    finally:
        target.kube.run("apply", "-f", "-", namespaced=False, stdin=yaml.safe_dump(kept))
    wait_until(privileged_pod_admitted(target, admitted=False), timeout=FLIP_SECONDS, interval=1.0,
               what="a privileged pod refused again once the binding is back")
