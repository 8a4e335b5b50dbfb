"""A second, independent verdict on each pair: cyclonus (the Kubernetes network-policy community's analyser), asked
offline with ``analyze --mode query-traffic`` about exactly the policies and pod labels the cluster runs.

It is built from the Go module proxy with the offline cluster's other parts (immich_conformance.offline_cluster.build).
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from .matrix import Pair, StackObjects

VERDICT = re.compile(r"IS ALLOWED\?\s*\|\s*(TRUE|FALSE)", re.IGNORECASE)
POD_IP = "10.244.255.{}"  # cyclonus wants an address per peer; only labels decide for pod peers


class CyclonusError(RuntimeError):
    pass


def _policy_list(objects: StackObjects) -> dict[str, Any]:
    items = [{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
              "metadata": {"name": p["metadata"]["name"], "namespace": objects.namespace},
              "spec": p.get("spec") or {}} for p in objects.policies]
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicyList", "items": items}


def _peer(objects: StackObjects, workload: str, index: int) -> dict[str, Any]:
    endpoint = objects.endpoints[workload]
    return {"Internal": {"PodLabels": endpoint.labels, "NamespaceLabels": objects.namespace_labels()[objects.namespace],
                         "Namespace": objects.namespace},
            "IP": POD_IP.format(index + 1)}


def verdicts(cyclonus: Path, objects: StackObjects, pairs: list[Pair]) -> list[bool]:
    """Whether cyclonus allows each pair, in order."""
    names = sorted(objects.endpoints)
    traffic = [{"Source": _peer(objects, p.source, names.index(p.source)),
                "Destination": _peer(objects, p.destination, names.index(p.destination)),
                "Protocol": "TCP", "ResolvedPort": p.target_port, "ResolvedPortName": p.target_port_name}
               for p in pairs]
    with tempfile.TemporaryDirectory(prefix="cyclonus-") as work:
        policy_dir = Path(work) / "policies"
        policy_dir.mkdir()
        (policy_dir / "policies.json").write_text(json.dumps(_policy_list(objects)))
        traffic_file = Path(work) / "traffic.json"
        traffic_file.write_text(json.dumps(traffic))
        result = subprocess.run([str(cyclonus), "analyze", "--mode", "query-traffic", "--policy-path",
                                 str(policy_dir), "--traffic-path", str(traffic_file)],
                                capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise CyclonusError(f"cyclonus analyze failed (exit {result.returncode}): {result.stderr.strip()[-500:]}")
    found = [m.group(1).upper() == "TRUE" for m in VERDICT.finditer(result.stdout)]
    if len(found) != len(pairs):
        raise CyclonusError(f"cyclonus answered {len(found)} verdicts for {len(pairs)} flows")
    return found
