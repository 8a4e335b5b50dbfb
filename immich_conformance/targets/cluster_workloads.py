"""What only a cluster can show, for the cluster target: its Deployments restarted, scaled down and watched, the NAS
folder on its node taken away and put back, pod-to-pod connections, admission and NetworkPolicy enforcement."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

from ..conditions import pods_gone, url_answers_ok
from ..kube import Kube
from ..netpolicy.probes import connects
from ..procs import WaitTimeout, wait_until
from ..trust_store import system_trust
from .base import Endpoint, TargetUnsupported

ROLLOUT_TIMEOUT = 300.0
ROUTE_TIMEOUT = 60.0  # a fresh pod Ready -> the Service routing to it
SERVICE_PORTS = {"origin-proxy": 8080, "immich-server": 2283, "immich-postgres": 5432, "immich-redis": 6379,
                 "immich-machine-learning": 3003, "edge-standin": 8080}


class ClusterWorkloads:
    """Mixed into ``ClusterTarget``, which sets these once it is connected (and the Target's ``api_key``)."""

    kube: Kube
    namespace: str
    api_key: str
    nas_root: Path
    progress: Callable[[str], None]
    _lan: Endpoint
    _enforces_policy: bool | None

    def deployments(self) -> dict[str, dict]:
        return {d["metadata"]["name"]: d for d in self.kube.deployments()}

    def wait_available(self, names: list[str] | None = None, *, since: float = 0.0,
                       timeout: float = ROLLOUT_TIMEOUT) -> float:
        return self.kube.wait_rollout(since=since, timeout=timeout, names=names)

    def restart(self, deployment: str) -> float:
        """Delete the Deployment's pods, wait for fresh ones to be Ready and for Immich to serve again through its
        NodePort (kube-proxy routes to a new pod a moment after it is Ready; Immich reconnects to a new database);
        seconds taken."""
        since = self.restart_without_waiting(deployment)
        self.wait_available([deployment], since=since)
        wait_until(self.serves_api, timeout=ROUTE_TIMEOUT, interval=0.5,
                   what=f"Immich answering an API request on {self._lan.url} after {deployment} restarted")
        return time.time() - since

    @contextlib.contextmanager
    def immich_server_stopped(self) -> Iterator[None]:
        """The Immich server scaled to no pods (every one gone); afterwards back to its replicas, Ready and routed
        to through its NodePort. When the body fails the server stays stopped (its database may be half restored);
        the run's teardown removes it with the rest."""
        name = "immich-server"
        deployment = self.deployments()[name]
        replicas = int(deployment["spec"].get("replicas", 1))
        self.kube.run("scale", f"deployment/{name}", "--replicas=0")
        wait_until(pods_gone(self.kube, deployment["spec"]["selector"]["matchLabels"]), timeout=ROLLOUT_TIMEOUT,
                   interval=0.5, what=f"every {name} pod gone")
        yield
        since = time.time()
        self.kube.run("scale", f"deployment/{name}", f"--replicas={replicas}")
        self.wait_available([name], since=since)
        wait_until(url_answers_ok(f"{self._lan.url}/api/server/ping", timeout=3.0), timeout=ROUTE_TIMEOUT,
                   interval=0.5, what=f"Immich answering on {self._lan.url} after {name} started again")

    def serves_api(self) -> bool:
        """Immich answers an authenticated request (one that reads its database) through the NodePort."""
        try:
            return httpx.get(f"{self._lan.url}/api/users/me", headers={"x-api-key": self.api_key},
                             timeout=3, verify=system_trust()).status_code == 200
        except httpx.HTTPError:
            return False

    def restart_without_waiting(self, deployment: str) -> float:
        since = time.time()
        selector = self.deployments()[deployment]["spec"]["selector"]["matchLabels"]
        self.kube.run("delete", "pods", "-l", ",".join(f"{k}={v}" for k, v in selector.items()), "--wait=false")
        return since

    def stays_unready(self, deployment: str, *, since: float, seconds: float) -> bool:
        """True when no pod of ``deployment`` created after ``since`` becomes Ready: the kubelet refuses to mount
        one of its volumes (it starts none of its containers until the mount succeeds), or none is Ready within
        ``seconds``. False as soon as one is Ready."""
        selector = self.deployments()[deployment]["spec"]["selector"]["matchLabels"]
        ready: list[bool] = []

        def settled() -> bool:
            if self.kube.ready_pods(selector, since=since):
                ready.append(True)
                return True
            refusals = self.kube.mount_refusals(selector, since=since)
            if refusals:
                self.progress(f"{deployment}: the kubelet refuses to start it: {refusals[0]}")
            return bool(refusals)

        try:
            wait_until(settled, timeout=seconds, interval=1.0, what=f"a Ready {deployment} pod or a refused mount")
        except WaitTimeout:
            return True
        return not ready

    def unmount_nas(self) -> None:
        """The NAS share goes away: its library folder is no longer there on the node (moved aside, kept whole)."""
        nas = self.nas_root
        nas.rename(nas.with_name(nas.name + ".unmounted"))

    def mount_nas(self) -> bool:
        """The NAS share back in place; False when it already was."""
        nas = self.nas_root
        away = nas.with_name(nas.name + ".unmounted")
        if nas.exists() or not away.exists():
            return False
        away.rename(nas)
        return True

    def tunnel_destinations(self) -> list[str]:
        """Where the tunnel (the edge stand-in in cloudflared's place) delivers: every --origin it is given."""
        spec = self.deployments()["edge-standin"]["spec"]["template"]["spec"]
        args = [a for c in spec["containers"] for a in [*c.get("command", []), *c.get("args", [])]]
        return [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--origin"]

    def can_connect(self, source: str, destination: str) -> bool:
        """Whether a TCP connection from a pod of ``source`` to ``destination``'s Service port succeeds."""
        return connects(self.kube, source, destination, SERVICE_PORTS[destination])

    def admission_of_privileged_pod(self) -> str:
        image = self.deployments()["immich-server"]["spec"]["template"]["spec"]["containers"][0]["image"]
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "conformance-privileged-probe", "namespace": self.namespace},
               "spec": {"containers": [{"name": "probe", "image": image, "imagePullPolicy": "IfNotPresent",
                                        "securityContext": {"privileged": True}}]}}
        result = self.kube.run("create", "--dry-run=server", "-f", "-", stdin=json.dumps(pod), check=False)
        return "" if result.returncode == 0 else result.stderr.strip()

    def require_network_policy_enforcement(self) -> None:
        if self._enforces_policy is None:
            # The policies deny the tunnel any way to Postgres: a cluster that lets it through ignores them.
            self._enforces_policy = not self.can_connect("edge-standin", "immich-postgres")
        if not self._enforces_policy:
            raise TargetUnsupported("this cluster does not enforce NetworkPolicy (a probe from the tunnel reached "
                                    "Postgres, which the policies deny): its CNI ignores policies. These scenarios "
                                    "run on a cluster whose CNI enforces them (e.g. kind with Calico, or k3s)")

    def node_ports(self) -> dict[str, list[int]]:
        return {s["metadata"]["name"]: [p["nodePort"] for p in s["spec"]["ports"] if "nodePort" in p]
                for s in self.kube.items("services")}

    def server_reachable(self) -> bool:
        try:
            return httpx.get(f"{self._lan.url}/api/server/ping", timeout=3, verify=system_trust()).status_code == 200
        except httpx.HTTPError:
            return False

