"""Node ports inside the range a cluster hands out (the kube-apiserver's default --service-node-port-range)."""

from __future__ import annotations

from immich_conformance.stack_checks.findings import Finding
from immich_conformance.stack_checks.manifests import Manifests, ref

NODE_PORT_RANGE = range(30000, 32768)


def check_node_ports(m: Manifests) -> list[Finding]:
    findings = []
    for svc in m.of_kind("Service"):
        for entry in (svc.get("spec") or {}).get("ports") or []:
            port = entry.get("nodePort")
            if port is None:
                continue
            if not isinstance(port, int) or port not in NODE_PORT_RANGE:
                findings.append(Finding("node-ports", ref(svc), f"nodePort {port!r} is outside "
                                                                f"{NODE_PORT_RANGE.start}-{NODE_PORT_RANGE.stop - 1}: "
                                                                f"the API server refuses it; set lanNodePort in the "
                                                                f"overlay's settings.yaml to a port in that range"))
    return findings
