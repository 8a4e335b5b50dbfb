"""The stack's own invariants hold in every overlay, and the releases agree with immich_conformance/versions.py."""

from __future__ import annotations

import pytest

from immich_conformance.stack_checks import RenderedOverlay, run_static_checks
from immich_conformance.stack_checks.image_pins import split_image
from immich_conformance.stack_checks.manifests import Manifests
from immich_conformance.stack_checks.netpol import Endpoint, PolicySet
from immich_conformance.versions import ENVOY_VERSION, IMMICH_VERSION


def test_cross_reference_checks_hold(rendered: RenderedOverlay) -> None:
    findings = run_static_checks(rendered)
    assert not findings, "\n".join(map(str, findings))


def _tag(rendered: RenderedOverlay, workload: str) -> str | None:
    pod = Manifests(rendered.documents).pod_template(workload)
    return split_image(pod.containers()[0]["image"])[1]


def test_immich_release_is_the_one_in_versions_py(rendered: RenderedOverlay) -> None:
    assert _tag(rendered, "immich-server") == IMMICH_VERSION
    assert _tag(rendered, "immich-machine-learning") == IMMICH_VERSION


def test_origin_proxy_runs_the_envoy_release_of_the_wheel(rendered: RenderedOverlay) -> None:
    assert _tag(rendered, "origin-proxy") == f"v{ENVOY_VERSION}"


def test_database_image_is_immichs_vectorchord_postgres_pinned_by_digest(rendered: RenderedOverlay) -> None:
    pod = Manifests(rendered.documents).pod_template("immich-postgres")
    name, tag, digest = split_image(pod.containers()[0]["image"])
    assert name == "ghcr.io/immich-app/postgres" and "vectorchord" in (tag or "") and digest


def test_postgres_shared_memory_matches_compose(rendered: RenderedOverlay) -> None:
    pod = Manifests(rendered.documents).pod_template("immich-postgres")
    mounts = {m["mountPath"]: m["name"] for m in pod.containers()[0]["volumeMounts"]}
    assert pod.volume(mounts["/dev/shm"])["emptyDir"] == {"medium": "Memory", "sizeLimit": "128Mi"}


# The evaluator itself, on small cases with known answers.
POD_A = Endpoint("a", "ns", {"app": "a"}, None, {("http", "TCP"): 8080})
POD_B = Endpoint("b", "ns", {"app": "b"}, None, {("http", "TCP"): 8080})
OUTSIDE = Endpoint("outside", address="192.168.1.7")


def _policy(name: str, spec: dict) -> dict:
    return {"kind": "NetworkPolicy", "metadata": {"name": name, "namespace": "ns"}, "spec": spec}


DENY_ALL = _policy("deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
A_TO_B = _policy("a-to-b", {"podSelector": {"matchLabels": {"app": "b"}},
                            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "a"}}}],
                                         "ports": [{"port": "http"}]}]})
A_OUT = _policy("a-out", {"podSelector": {"matchLabels": {"app": "a"}}, "policyTypes": ["Egress"],
                          "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "b"}}}]}]})
LAN_TO_B = _policy("lan", {"podSelector": {"matchLabels": {"app": "b"}},
                           "ingress": [{"from": [{"ipBlock": {"cidr": "192.168.0.0/16",
                                                              "except": ["192.168.1.0/24"]}}]}]})


@pytest.mark.parametrize(("policies", "source", "destination", "port", "allowed"), [
    ([], POD_A, POD_B, 8080, True),
    ([DENY_ALL], POD_A, POD_B, 8080, False),
    ([DENY_ALL, A_TO_B], POD_A, POD_B, 8080, False),  # A's egress is still denied
    ([DENY_ALL, A_TO_B, A_OUT], POD_A, POD_B, 8080, True),
    ([DENY_ALL, A_TO_B, A_OUT], POD_A, POD_B, 9090, False),  # the named port means 8080 only
    ([DENY_ALL, A_TO_B, A_OUT], POD_B, POD_A, 8080, False),
    ([A_TO_B], OUTSIDE, POD_B, 8080, False),  # pod selectors never match addresses
    ([LAN_TO_B], OUTSIDE, POD_B, 8080, False),  # inside the except range
    ([LAN_TO_B], Endpoint("other", address="192.168.2.7"), POD_B, 8080, True),
])
def test_network_policy_evaluator(policies: list[dict], source: Endpoint, destination: Endpoint, port: int,
                                  allowed: bool) -> None:
    assert PolicySet(policies, {}, "ns").allows(source, destination, port) is allowed
