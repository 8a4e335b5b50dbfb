"""The matrix of a namespace a cluster runs, judged three ways."""

from __future__ import annotations

from pathlib import Path

from immich_conformance.kube import Kube

from . import cyclonus, probes
from .matrix import Row, StackObjects


def live_objects(kube: Kube) -> StackObjects:
    """The Deployments, Services and NetworkPolicies of the namespace, as the cluster runs them."""
    kinds = {"deployments": "Deployment", "services": "Service", "networkpolicies": "NetworkPolicy"}
    documents = [{**item, "kind": kind} for plural, kind in kinds.items() for item in kube.items(plural)]
    return StackObjects(documents, kube.namespace)


def judge(kube: Kube, cyclonus_binary: Path) -> list[Row]:
    objects = live_objects(kube)
    pairs = objects.pairs()
    if not pairs:
        raise ValueError(f"namespace {kube.namespace} has no workload and Service to judge: deploy the stack first")
    analysed = cyclonus.verdicts(cyclonus_binary, objects, pairs)
    probed = probes.probe(kube, pairs)
    return [Row(pair, {"static": objects.static_verdict(pair), "cyclonus": by_cyclonus, "probe": by_probe})
            for pair, by_cyclonus, by_probe in zip(pairs, analysed, probed, strict=True)]
