"""The cluster target: the stack deployed with kustomize on a real Kubernetes.

Either the offline single-node cluster this machine builds and runs itself (``--cluster offline``: provisioned,
deployed, tested and torn down by the run) or an existing kind/k3s cluster (``--kubeconfig`` / KUBECONFIG). The suite
applies ``stack/overlays/ci``: the kind overlay with the project's own images and the Cloudflare edge stand-in in
cloudflared's place. Endpoints come from the cluster: the node's address, the immich-server and edge-standin
NodePorts; the origin proxy through ``kubectl port-forward``; the NAS through the host folder the overlay mounts.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import yaml

from .. import STACK_DIR
from ..access_keys import KeyRing
from ..conditions import all_of, port_answers
from ..kube import CrashLoop, Kube, KubeError
from ..procs import WaitTimeout, wait_until
from ..stack_checks.rendering import StackConfigError
from ..trust_store import system_trust
from ..versions import IMMICH_IMAGE_NAMES
from .base import Endpoint, LogMarks, Target, TargetUnsupported
from .bootstrap import bootstrap_user
from .cluster_workloads import ROLLOUT_TIMEOUT, ROUTE_TIMEOUT, ClusterWorkloads
from .credentials import API_KEY_ENV, secret
from .node_claims import check_host_folders, check_node_ports, prepare_host_folders
from .ownership import OwnershipError, check_ownership, mark, prune
from .port_forward import PortForward, PortsTaken, forward_service
from .stack_source import Placement, StackSource, dump, ensure_test_secrets, host_folders

DEFAULT_OVERLAY = "ci"
COMPONENTS = ("origin-proxy", "immich-server", "edge-standin", "immich-machine-learning", "immich-postgres",
              "immich-redis")
# For a run against a cluster whose node is this very machine (the offline cluster, deployed by another run).
NODE_ADDRESS_ENV = "IMMICH_CONFORMANCE_NODE_ADDRESS"
NODE_LOCAL_ENV = "IMMICH_CONFORMANCE_NODE_LOCAL"
SETTLE_SECONDS = 3.0  # both paths answering this long in a row: the node's packet filters caught up


class ClusterSetupError(RuntimeError):
    """The cluster target cannot start as asked; the message says what to fix."""


class ClusterTarget(ClusterWorkloads, Target):
    name = "cluster"

    def __init__(self, *, kubeconfig: Path | None, offline: bool, keep: bool = False, deploy: bool = True,
                 source: StackSource | None = None, placement: Placement | None = None,
                 progress: Callable[[str], None] | None = None) -> None:
        self.kubeconfig = kubeconfig
        self.source = source or StackSource(DEFAULT_OVERLAY)
        self.placement = placement or Placement()
        self.offline = offline
        self.keep = keep
        self.deploy = deploy
        self.persists_between_runs = not deploy  # --deployed: a deployment that outlives the run
        self.progress: Callable[[str], None] = progress or (lambda message: None)
        self._cluster = None
        self._port_forward: PortForward | None = None
        self._origin: Endpoint | None = None
        self._enforces_policy: bool | None = None
        self._folders: dict[str, str] | None = None
        self._connected = False
        self.applied: list[dict] = []
        self.rolled: list[str] = []  # the Deployments whose pods the last apply_release replaces
        self.timings: dict[str, float] = {}

    @property
    def namespace(self) -> str:
        return self.placement.namespace

    @property
    def immich_tag(self) -> str | None:
        return self.source.immich_tag

    # --- lifecycle -------------------------------------------------------------------------------------------------
    def _start(self) -> None:
        started = time.monotonic()
        self._connect()
        if self.deploy:
            self._deploy()
        self._lan = Endpoint(f"http://{self.node_ip}:{self.kube.node_port('immich-server', 'http')}")
        edge_port = self.kube.node_port("edge-standin", "app")
        self._external = Endpoint(f"http://{self.node_ip}:{edge_port}", {"Host": self.public_hostname})
        # Ready pods reach kube-proxy's NodePort rules a moment later: wait until both node ports answer.
        wait_until(all_of(self.server_reachable, port_answers(edge_port, self.node_ip)),
                   timeout=90, interval=0.5, what=f"the NodePorts on {self.node_ip} answering")
        # A fresh deployment is bootstrapped (an API key in the environment is for another deployment); one already
        # deployed (--deployed) is tested with the key its deployer hands over.
        self._api_key = (secret(API_KEY_ENV) if not self.deploy else "") or bootstrap_user(self._lan)
        self._wait_settled()
        self.timings["ready"] = time.monotonic() - started
        self.progress(f"cluster target ready in {self.timings['ready']:.1f}s: LAN {self._lan.url}, "
                       f"public hostname {self._external.url} (Host: {self.public_hostname})")

    def _wait_settled(self) -> None:
        """Until both paths have answered for SETTLE_SECONDS in a row: the LAN NodePort, and a service token through
        the public hostname. Pods that just became Ready reach the node's packet filters a moment later (kube-proxy's
        Service rules, the policy controller's sets), and a connection in between is refused. And the origin proxy
        fetches the team's keys when it starts, then each second while that fails (Envoy's async_fetch): a proxy
        Ready before the keys' server was routed to refuses every token for a while. A path that never answers is
        left to the scenarios, which say why."""
        streak: list[float] = []

        def settled() -> bool:
            headers = {**self._external.headers, **self.service_token_headers}
            try:
                ok = self.server_reachable() and httpx.get(f"{self._external.url}/api/server/ping", headers=headers,
                                                           timeout=3, verify=system_trust()).status_code == 200
            except httpx.HTTPError:
                ok = False
            if not ok:
                streak.clear()
                return False
            streak.append(time.monotonic())
            return streak[-1] - streak[0] >= SETTLE_SECONDS

        try:
            wait_until(settled, timeout=ROUTE_TIMEOUT, interval=0.25,
                       what=f"the LAN and public paths answering for {SETTLE_SECONDS:.0f}s in a row")
        except WaitTimeout as exc:
            self.progress(f"{exc}: the scenarios will say why")

    def preflight(self) -> None:
        """Everything a deployment checks before its first change (the cluster answers; the namespace, node ports
        and host folders are free or the suite's), with no change made; ClusterSetupError says what is wrong."""
        self._connect()
        self._check_free(self.render(self.source))

    def _connect(self) -> None:
        """The cluster, answering (the offline one provisioned first), and the edge stand-in's material."""
        if self._connected:
            return
        started = time.monotonic()
        try:
            self.placement.check()
        except StackConfigError as exc:
            raise ClusterSetupError(str(exc)) from None
        if self.offline:
            from ..images.build import build_images, default_cache_dir
            from ..offline_cluster import OfflineCluster

            self._cluster = OfflineCluster(progress=self.progress)
            info = self._cluster.up()
            self.kubeconfig = info.kubeconfig
            self.node_ip = info.node_ip
            images = build_images(None, default_cache_dir(), self.progress)
            self._cluster.import_images([image.archive for image in images.values()])
            if self.immich_tag:
                self.import_immich_release(self.immich_tag)
            self.timings["provision"] = time.monotonic() - started
        elif self.kubeconfig is None:
            raise ClusterSetupError("--target cluster needs a cluster: --cluster offline (build and run one here) or "
                                    "--kubeconfig PATH / KUBECONFIG (an existing kind or k3s cluster)")
        elif not Path(self.kubeconfig).is_file():
            raise ClusterSetupError(f"--kubeconfig {self.kubeconfig}: no such file (kind get kubeconfig > FILE, or "
                                    "/etc/rancher/k3s/k3s.yaml on a k3s node)")
        self.kube = Kube(self.kubeconfig, self.namespace)
        try:
            self.kube.check_config()
        except KubeError as exc:
            raise ClusterSetupError(str(exc)) from None
        problem = self.kube.not_ready()
        if problem is not None:
            raise ClusterSetupError(f"the cluster of {self.kubeconfig} does not answer: {problem}")
        if not self.offline:
            self.node_ip = os.environ.get(NODE_ADDRESS_ENV) or "127.0.0.1"
        self.material = ensure_test_secrets(self.progress)
        self.aud = self.material.aud
        self.team_domain = self.material.team_domain
        self.public_hostname = self.material.public_hostname
        self._connected = True

    def _deploy(self) -> None:
        """A fresh test deployment. Everything is checked before the first change: the namespace and every object
        in it are the suite's (or absent), the node ports and host folders are free."""
        began = time.monotonic()
        docs = self.render(self.source)
        exists, folders = self._check_free(docs)
        if exists:
            self.progress(f"deleting the suite's previous namespace {self.namespace}")
            self.kube.delete_namespaces(self.namespace)
        prepare_host_folders(folders)
        self.progress(f"applying {self.source.origin} overlays/{self.source.overlay}"
                       f"{f' with Immich {self.immich_tag}' if self.immich_tag else ''} into namespace "
                       f"{self.namespace}")
        self._apply(docs)
        try:
            took = self.kube.wait_rollout(timeout=ROLLOUT_TIMEOUT)
        except CrashLoop as exc:
            raise ClusterSetupError(f"the test deployment in namespace {self.namespace} does not start: {exc}") \
                from None
        self.timings["rollout"] = time.monotonic() - began
        self.progress(f"every Deployment Available ({took:.1f}s after apply)")

    def _check_free(self, docs: list[dict]) -> tuple[bool, dict[str, Path]]:
        """Whether the namespace exists (then it is the suite's), and the host folders, once checked free."""
        try:
            exists = check_ownership(self.kube, self.namespace, docs)
            check_node_ports(self.kube, self.namespace, docs)
            return exists, check_host_folders(self.kube, self.namespace, docs, self.host_path)
        except (OwnershipError, KubeError) as exc:
            raise ClusterSetupError(str(exc)) from None

    def render(self, source: StackSource) -> list[dict]:
        """The manifests of ``source`` placed as this target deploys them (namespace, node ports, host folders)."""
        try:
            return self.placement.apply_to(source.render())
        except StackConfigError as exc:
            raise ClusterSetupError(str(exc)) from None

    def _apply(self, docs: list[dict]) -> float:
        applied_at = time.time()
        self.kube.run("apply", "-f", "-", namespaced=False, stdin=dump(mark(docs)), timeout=180)
        self.applied = docs
        self._folders = host_folders(docs)
        return applied_at

    def apply_release(self, source: StackSource) -> float:
        """Apply ``source`` over the running deployment and delete the suite's objects it no longer has; returns
        the time of the apply (for waiting on fresh pods of ``rolled``)."""
        docs = self.render(source)
        before = self.applied
        try:
            if not check_ownership(self.kube, self.namespace, docs):
                raise ClusterSetupError(f"namespace {self.namespace} is gone: the deployment to upgrade is not there")
        except OwnershipError as exc:
            raise ClusterSetupError(str(exc)) from None
        applied_at = self._apply(docs)
        for ref in prune(self.kube, keep=docs, was=before):
            self.progress(f"deleted {ref}: {source.origin} no longer has it")
        self.source = source
        old = {d["metadata"]["name"]: d["spec"]["template"] for d in before if d.get("kind") == "Deployment"}
        self.rolled = [d["metadata"]["name"] for d in docs
                       if d.get("kind") == "Deployment" and old.get(d["metadata"]["name"]) != d["spec"]["template"]]
        return applied_at

    def import_immich_release(self, immich_tag: str) -> None:
        """Offline cluster: build (or take from the cache) the API double images for ``immich_tag`` and import them.
        A tag VERSION-FAULT is the deliberately broken build of VERSION (see immich_conformance.double)."""
        if self._cluster is None:
            return
        from ..images.build import build_images, default_cache_dir
        from ..images.recipes import BuildOptions

        images = build_images(list(IMMICH_IMAGE_NAMES), default_cache_dir(), self.progress,
                              options=BuildOptions.for_immich_tag(immich_tag))
        self._cluster.import_images([image.archive for image in images.values()])

    def host_path(self, node_path: str) -> Path:
        """Where a node path is on this machine: the same path on the offline node, kind's extraMounts otherwise."""
        if self.offline or os.environ.get(NODE_LOCAL_ENV) == "1":
            return Path(node_path)
        cluster = yaml.safe_load((STACK_DIR / "kind" / "cluster.yaml").read_text())
        for node in cluster.get("nodes", []):
            for mount in node.get("extraMounts", []):
                inside = mount["containerPath"].rstrip("/")
                if node_path == inside or node_path.startswith(inside + "/"):
                    return Path(mount["hostPath"]) / node_path[len(inside):].lstrip("/")
        raise TargetUnsupported(f"no kind extraMount in stack/kind/cluster.yaml holds {node_path}")

    def close(self) -> None:
        if self._port_forward is not None:
            self._port_forward.stop()
            self._port_forward = None
        if self._cluster is not None and not self.keep and not self._cluster.was_up:
            self._cluster.down()
            self._cluster = None

    # --- what the scenarios use ------------------------------------------------------------------------------------
    @property
    def origin(self) -> Endpoint:
        """The origin proxy Service, through a port-forward (ClusterIPs are not routable from every host)."""
        if self._origin is None:
            port = self._forward_origin_proxy()
            self._origin = Endpoint(f"http://127.0.0.1:{port}", {"Host": self.public_hostname})
        return self._origin

    def _forward_origin_proxy(self) -> int:
        try:
            self._port_forward = forward_service(self.kube, "origin-proxy", 8080, self.progress)
        except PortsTaken as exc:
            raise ClusterSetupError(str(exc)) from None
        return self._port_forward.port

    @property
    def service_token_headers(self) -> dict[str, str]:
        return self.material.service_token_headers

    def access_keys(self) -> KeyRing:
        return KeyRing.load(self.material.key_ring_file)

    @property
    def nas_root(self) -> Path:
        if self._folders is None:  # a deployment made by another run (--deployed): as it runs
            self._folders = host_folders(self.kube.deployments())
        return self.host_path(self._folders["nas"])

    def sentinel_url(self, component: str) -> str:
        if component == "origin-proxy":
            return f"{self.origin.url}/api/server/ping"
        if component == "immich-server":
            return f"{self._lan.url}/api/server/ping"
        return super().sentinel_url(component)

    def log_marks(self) -> LogMarks:
        now = time.time()
        return {component: now for component in COMPONENTS}

    def logs_since(self, marks: LogMarks) -> dict[str, str]:
        return {c: self.kube.logs_since(c, marks.get(c, 0.0)) for c in COMPONENTS}

    def diagnostics(self, marks: LogMarks) -> dict[str, str]:
        out = self.logs_since(marks)
        with contextlib.suppress(KubeError):
            out["kubernetes events and unready pods"] = self.kube.unready_report()
        return out
