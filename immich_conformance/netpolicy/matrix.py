"""The stack's whole traffic matrix: every (source workload, destination Service and port) pair of the objects a
cluster runs, with the project's static evaluator's verdict beside whatever else is compared with it.

A pair whose destination Service selects the source's own pods is left out: a pod may always reach itself, whatever
the policies say (the NetworkPolicy spec, and kube-router, allow it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from immich_conformance.stack_checks.manifests import Manifests
from immich_conformance.stack_checks.netpol import NAMESPACE_LABEL, Endpoint, PolicySet, pod_endpoints


@dataclass(frozen=True)
class Pair:
    source: str  # the workload (Deployment) whose pod opens the connection
    service: str  # the destination Service
    port: int  # the Service's port, what the source connects to
    destination: str  # the workload behind the Service
    target_port: int  # the container port the connection lands on
    target_port_name: str = ""

    @property
    def label(self) -> str:
        return f"{self.source} -> {self.service}:{self.port}"


@dataclass
class Row:
    pair: Pair
    verdicts: dict[str, bool | None] = field(default_factory=dict)  # "static", "cyclonus", "probe" -> allowed

    @property
    def agrees(self) -> bool:
        return len(set(self.verdicts.values())) == 1 and None not in self.verdicts.values()

    def describe(self) -> str:
        said = ", ".join(f"{who} {_word(v)}" for who, v in self.verdicts.items())
        return f"{self.pair.label}: {said}"


def _word(allowed: bool | None) -> str:
    return "no verdict" if allowed is None else "allowed" if allowed else "denied"


class StackObjects:
    """The objects of one namespace as a cluster runs them (or as they render), indexed for the matrix."""

    def __init__(self, documents: list[dict[str, Any]], namespace: str) -> None:
        self.namespace = namespace
        self.manifests = Manifests(documents, namespace)
        self.endpoints: dict[str, Endpoint] = pod_endpoints(self.manifests)
        self.policies = self.manifests.of_kind("NetworkPolicy")
        self._policy_set = PolicySet(self.policies, self.namespace_labels(), namespace)

    def namespace_labels(self) -> dict[str, dict[str, str]]:
        return {ns: {NAMESPACE_LABEL: ns} for ns in (self.namespace, "kube-system")}

    def pairs(self) -> list[Pair]:
        found = []
        for service in self.manifests.of_kind("Service"):
            selector = (service.get("spec") or {}).get("selector") or {}
            if not selector:
                continue
            backends = self.manifests.pods_selected_by(selector, self.namespace)
            for backend in backends:
                destination = str(backend.owner["metadata"]["name"])
                for port in (service.get("spec") or {}).get("ports") or []:
                    if (port.get("protocol") or "TCP") != "TCP":
                        continue
                    number, name = _resolve_target(port, backend.ports())
                    for source in sorted(self.endpoints):
                        if source != destination:
                            found.append(Pair(source, service["metadata"]["name"], int(port["port"]), destination,
                                              number, name))
        return sorted(found, key=lambda p: (p.source, p.service, p.port))

    def static_verdict(self, pair: Pair) -> bool:
        return self._policy_set.allows(self.endpoints[pair.source], self.endpoints[pair.destination], pair.target_port)


def _resolve_target(port: dict[str, Any], container_ports: list[dict[str, Any]]) -> tuple[int, str]:
    target = port.get("targetPort", port["port"])
    if isinstance(target, int) or str(target).isdigit():
        number = int(target)
        name = next((str(p.get("name") or "") for p in container_ports if p.get("containerPort") == number), "")
        return number, name
    declared = next((p for p in container_ports if p.get("name") == target), None)
    if declared is None:
        raise ValueError(f"Service port {port.get('name') or port['port']} names targetPort {target!r}, which no "
                         "container of its pods declares")
    return int(declared["containerPort"]), str(target)


def disagreements(rows: list[Row]) -> list[str]:
    return [row.describe() for row in rows if not row.agrees]


def html_table(rows: list[Row]) -> str:
    """The matrix as an HTML table (for pytest-html's report): one row per pair, one column per verdict."""
    names = list(rows[0].verdicts) if rows else []
    head = "".join(f"<th>{n}</th>" for n in ("source", "Service:port", *names))
    body = []
    for row in rows:
        style = "" if row.agrees else ' style="background:#fdd"'
        cells = "".join(f"<td>{_word(row.verdicts[n])}</td>" for n in names)
        body.append(f"<tr{style}><td>{row.pair.source}</td><td>{row.pair.service}:{row.pair.port}</td>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
