"""Talking to the cluster's API server with the admin certificate, and the waits that avoid its known races.

By hand (the standard library's urllib) rather than with the ``kubernetes`` client, which the suite uses everywhere
else (``immich_conformance.kube``): this client asks while the API server is still coming up, where the client's
discovery cannot work yet, and needs only a few raw paths (``/readyz``, the node, pods, a ServiceAccount)."""

from __future__ import annotations

import calendar
import json
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from immich_conformance.procs import WaitTimeout, wait_until

from .errors import ClusterError


class KubeApi:
    """A minimal client: GET/POST JSON over TLS with a client certificate, and kubectl for manifests."""

    def __init__(self, server: str, ca: Path, cert: Path, key: Path, kubectl: Sequence[str]) -> None:
        self.server = server.rstrip("/")
        self.context = ssl.create_default_context(cafile=str(ca))
        self.context.load_cert_chain(str(cert), str(key))
        self.kubectl_argv = list(kubectl)

    def request(self, method: str, path: str, body: object | None = None, *, timeout: float = 10.0) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.server + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", "Accept": "application/json"})
        with urllib.request.urlopen(req, context=self.context, timeout=timeout) as resp:
            raw = resp.read()
        return json.loads(raw) if raw[:1] in (b"{", b"[") else raw.decode()

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def get_or_none(self, path: str) -> Any:
        try:
            return self.get(path)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    def kubectl(self, *args: str, stdin: str | None = None, timeout: float = 120.0) -> str:
        result = subprocess.run([*self.kubectl_argv, *args], input=stdin, capture_output=True, text=True,
                                timeout=timeout)
        if result.returncode != 0:
            raise ClusterError(f"kubectl {' '.join(args)} failed: {(result.stderr or result.stdout).strip()}")
        return result.stdout

    def apply(self, manifest: str) -> str:
        return self.kubectl("apply", "-f", "-", stdin=manifest)

    # -- waits --------------------------------------------------------------------------------------------------
    def node_ready(self, name: str) -> bool:
        node = self.get_or_none(f"/api/v1/nodes/{name}")
        if not node:
            return False
        return any(c.get("type") == "Ready" and c.get("status") == "True"
                   for c in node.get("status", {}).get("conditions", []))

    def wait_default_service_account(self, namespace: str, timeout: float = 30.0) -> None:
        """A pod created right after its namespace can be refused with "serviceaccount default not found": wait
        until the namespace's default ServiceAccount exists."""
        ns = urllib.parse.quote(namespace)
        try:
            wait_until(lambda: self.get_or_none(f"/api/v1/namespaces/{ns}/serviceaccounts/default"),
                       timeout=timeout, interval=0.2, what=f"ServiceAccount default in namespace {namespace}")
        except WaitTimeout as exc:
            raise ClusterError(f"{exc}: the controller-manager makes it; check its log") from None

    def ready_pods(self, namespace: str, selector: str, *, since: float | None = None) -> list[dict[str, Any]]:
        """Pods matching ``selector`` that are Ready now (and, with ``since``, were created at or after that time).

        Deployment status read right after a restart is stale (it still says Available from before), so waits
        look at the pods themselves."""
        query = urllib.parse.urlencode({"labelSelector": selector})
        pods = self.get(f"/api/v1/namespaces/{urllib.parse.quote(namespace)}/pods?{query}").get("items", [])
        ready = []
        for pod in pods:
            meta, status = pod.get("metadata", {}), pod.get("status", {})
            if meta.get("deletionTimestamp"):
                continue
            if since is not None and _timestamp(meta.get("creationTimestamp", "")) < int(since):
                continue
            if any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions", [])):
                ready.append(pod)
        return ready

    def wait_pods_ready(self, namespace: str, selector: str, *, count: int = 1, timeout: float = 120.0,
                        since: float | None = None) -> list[dict[str, Any]]:
        def probe() -> list[dict[str, Any]] | None:
            pods = self.ready_pods(namespace, selector, since=since)
            return pods if len(pods) >= count else None

        try:
            return wait_until(probe, timeout=timeout, interval=0.5,
                              what=f"{count} Ready pod(s) {selector} in {namespace}")
        except WaitTimeout as exc:
            raise ClusterError(f"{exc}; {self.describe_pods(namespace, selector)}") from None

    def describe_pods(self, namespace: str, selector: str) -> str:
        try:
            query = urllib.parse.urlencode({"labelSelector": selector})
            pods = self.get(f"/api/v1/namespaces/{urllib.parse.quote(namespace)}/pods?{query}").get("items", [])
            events = self.get(f"/api/v1/namespaces/{urllib.parse.quote(namespace)}/events").get("items", [])
        except (OSError, urllib.error.URLError, ValueError) as exc:
            return f"pods could not be listed ({exc})"
        lines = []
        for pod in pods:
            status = pod.get("status", {})
            waiting = [cs.get("state", {}).get("waiting", {}).get("reason") for cs in status.get("containerStatuses",
                                                                                                  [])]
            lines.append(f"pod {pod['metadata']['name']}: phase {status.get('phase')}, waiting {waiting}")
        for event in events[-8:]:
            lines.append(f"event {event.get('reason')}: {event.get('message', '').strip()}")
        return "; ".join(lines) or "no pods"


def _timestamp(text: str) -> int:
    try:
        return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError:
        return 0
