"""The traffic matrix's parts without a cluster: the pairs of the rendered stack, the static evaluator and cyclonus
agreeing on them (and both flipping when a policy is dropped), the probe's reading of what pods answered, and a
disagreement reported with the pair and every verdict."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from immich_conformance.kube import KubeError
from immich_conformance.netpolicy import cyclonus, probes
from immich_conformance.netpolicy.matrix import Pair, Row, StackObjects, disagreements, html_table
from immich_conformance.offline_cluster import OfflineCluster
from immich_conformance.targets.stack_source import Placement, StackSource, ensure_test_secrets

NAMESPACE = "immich"


@pytest.fixture(scope="module")
def documents() -> list[dict[str, Any]]:
    ensure_test_secrets(lambda message: None)
    return Placement(NAMESPACE).apply_to(StackSource("ci").render())


def objects_of(documents: list[dict[str, Any]], *, without: str | None = None) -> StackObjects:
    kept = [d for d in documents if not (d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == without)]
    return StackObjects(kept, NAMESPACE)


@pytest.fixture(scope="module")
def cyclonus_binary():  # noqa: ANN201
    binary = OfflineCluster(progress=lambda message: None).builder.binary("cyclonus")
    if not binary.is_file():
        pytest.skip("cyclonus is built with the offline cluster (python -m immich_conformance.offline_cluster up); "
                    f"not at {binary}")
    return binary


def test_every_source_workload_meets_every_service_port_but_its_own(documents: list[dict[str, Any]]) -> None:
    pairs = objects_of(documents).pairs()
    workloads = {p.source for p in pairs}
    assert {"edge-standin", "origin-proxy", "immich-server", "immich-postgres", "immich-redis",
            "immich-machine-learning"} <= workloads
    assert all(p.source != p.destination for p in pairs)
    labels = {p.label for p in pairs}
    assert {"edge-standin -> origin-proxy:8080", "immich-server -> immich-postgres:5432",
            "immich-redis -> edge-standin-team:443"} <= labels
    assert len(pairs) == len(labels)


def test_the_static_evaluator_allows_the_designed_flows_and_denies_the_rest(documents: list[dict[str, Any]]) -> None:
    objects = objects_of(documents)
    allowed = {p.label for p in objects.pairs() if objects.static_verdict(p)}
    assert allowed == {"edge-standin -> origin-proxy:8080", "origin-proxy -> edge-standin-team:443",
                       "origin-proxy -> immich-server:2283", "immich-server -> immich-postgres:5432",
                       "immich-server -> immich-redis:6379", "immich-server -> immich-machine-learning:3003"}


def test_cyclonus_agrees_with_the_static_evaluator_and_both_see_a_dropped_policy(documents: list[dict[str, Any]],
                                                                                 cyclonus_binary) -> None:  # noqa: ANN001
    for dropped in (None, "postgres-ingress", "default-deny"):
        objects = objects_of(documents, without=dropped)
        pairs = objects.pairs()
        analysed = cyclonus.verdicts(cyclonus_binary, objects, pairs)
        static = [objects.static_verdict(p) for p in pairs]
        differ = [p.label for p, a, s in zip(pairs, analysed, static, strict=True) if a != s]
        assert not differ, f"with {dropped or 'nothing'} dropped: {differ}"
        server_to_postgres = next(i for i, p in enumerate(pairs) if p.label == "immich-server -> immich-postgres:5432")
        assert analysed[server_to_postgres] is (dropped != "postgres-ingress"), f"with {dropped or 'nothing'} dropped"
        tunnel_to_postgres = next(i for i, p in enumerate(pairs) if p.label == "edge-standin -> immich-postgres:5432")
        assert analysed[tunnel_to_postgres] is False, "dropping a policy never opens a pod under default-deny"


class FakeKube:
    """Answers ``kubectl exec`` with what each workload's pod would print."""

    namespace = NAMESPACE

    def __init__(self, answers: dict[str, dict[tuple[str, int], str]]) -> None:
        self.answers = answers

    def run(self, *args: str, **_: Any) -> subprocess.CompletedProcess[str]:
        workload = args[1].removeprefix("deployment/")
        lines = [f"{word} {host} {port}" for (host, port), word in self.answers.get(workload, {}).items()]
        return subprocess.CompletedProcess(args, 0, "\n".join(lines), "")


PAIRS = [Pair("edge-standin", "origin-proxy", 8080, "origin-proxy", 8080),
         Pair("edge-standin", "immich-postgres", 5432, "immich-postgres", 5432)]
LISTENING = {"origin-proxy": {("127.0.0.1", 8080): "open"}, "immich-postgres": {("127.0.0.1", 5432): "open"}}


def test_the_probe_reads_each_pairs_answer() -> None:
    kube = FakeKube({**LISTENING, "edge-standin": {("origin-proxy", 8080): "open", ("immich-postgres", 5432): "shut"}})
    assert probes.probe(kube, PAIRS) == [True, False]  # type: ignore[arg-type]


def test_a_port_nothing_listens_on_stops_the_probe_naming_it() -> None:
    kube = FakeKube({"origin-proxy": {("127.0.0.1", 8080): "open"}, "immich-postgres": {("127.0.0.1", 5432): "shut"},
                     "edge-standin": {("origin-proxy", 8080): "open", ("immich-postgres", 5432): "shut"}})
    with pytest.raises(KubeError, match="nothing listens on immich-postgres:5432"):
        probes.probe(kube, PAIRS)  # type: ignore[arg-type]


def test_a_source_that_cannot_be_probed_is_named() -> None:
    kube = FakeKube({**LISTENING, "edge-standin": {("origin-proxy", 8080): "open"}})
    with pytest.raises(KubeError, match="could not probe from edge-standin.*immich-postgres:5432"):
        probes.probe(kube, PAIRS)  # type: ignore[arg-type]


def test_a_disagreement_names_the_pair_and_every_verdict() -> None:
    rows = [Row(PAIRS[0], {"static": True, "cyclonus": True, "probe": True}),
            Row(PAIRS[1], {"static": False, "cyclonus": False, "probe": True})]
    assert disagreements(rows) == ["edge-standin -> immich-postgres:5432: static denied, cyclonus denied, "
                                   "probe allowed"]
    table = html_table(rows)
    assert table.count("<tr") == 3 and table.count("background:#fdd") == 1
    assert disagreements([Row(PAIRS[0], {"static": True, "probe": None})]), "no verdict is no agreement"
