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
import secrets
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import yaml

from .. import STACK_DIR
from ..access_keys import KeyRing
from ..kube import Kube, KubeError
from ..procs import ManagedProcess, WaitTimeout, free_port, port_open, wait_until
from ..versions import IMMICH_IMAGE_NAMES, immich_image_at
from .base import Endpoint, LogMarks, Target, TargetUnsupported
from .bootstrap import API_KEY_ENV, bootstrap_user

NAMESPACE = "immich"
OVERLAYS = STACK_DIR / "overlays"
DEFAULT_OVERLAY = "ci"
KIND_OVERLAY = STACK_DIR / "overlays" / "kind"
COMPONENTS = ("origin-proxy", "immich-server", "edge-standin", "immich-machine-learning", "immich-postgres",
              "immich-redis")
SERVICE_PORTS = {"origin-proxy": 8080, "immich-server": 2283, "immich-postgres": 5432, "immich-redis": 6379,
                 "immich-machine-learning": 3003, "edge-standin": 8080}
PYTHON_IN_IMAGES = "/opt/venv/bin/python"  # the project's Python images (immich_conformance.images.recipes)
POSTGRES_UID = 999
TEST_DATA_MARKER = ".immich-conformance-test-data"
# For a run against a cluster whose node is this very machine (the offline cluster, deployed by another run).
NODE_ADDRESS_ENV = "IMMICH_CONFORMANCE_NODE_ADDRESS"
NODE_LOCAL_ENV = "IMMICH_CONFORMANCE_NODE_LOCAL"
ROLLOUT_TIMEOUT = 300.0


def set_immich_tag(rendered: str, tag: str) -> str:
    """Rendered manifests with the Immich server and machine-learning images at ``tag``."""
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    for doc in docs:
        for container in doc.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
            container["image"] = immich_image_at(container["image"], tag) or container["image"]
    return yaml.safe_dump_all(docs)


class ClusterSetupError(RuntimeError):
    """The cluster target cannot start as asked; the message says what to fix."""


def overlay_settings() -> dict[str, str]:
    doc = yaml.safe_load((KIND_OVERLAY / "settings.yaml").read_text())
    return {k: str(v) for k, v in doc["data"].items()}


class ClusterTarget(Target):
    name = "cluster"

    def __init__(self, *, kubeconfig: Path | None, offline: bool, keep: bool = False, deploy: bool = True,
                 immich_tag: str | None = None, overlay: str = DEFAULT_OVERLAY,
                 progress: Callable[[str], None] | None = None) -> None:
        self.kubeconfig = kubeconfig
        self.overlay = overlay
        self.immich_tag = immich_tag
        self.offline = offline
        self.keep = keep
        self.deploy = deploy
        self._progress = progress or (lambda message: None)
        self._cluster = None
        self._port_forward: ManagedProcess | None = None
        self._origin: Endpoint | None = None
        self._enforces_policy: bool | None = None
        self.timings: dict[str, float] = {}

    # --- lifecycle -------------------------------------------------------------------------------------------------
    def _start(self) -> None:
        started = time.monotonic()
        if self.offline:
            from ..cluster import OfflineCluster
            from ..images.build import build_images, default_cache_dir

            self._cluster = OfflineCluster(progress=self._progress)
            info = self._cluster.up()
            self.kubeconfig = info.kubeconfig
            self.node_ip = info.node_ip
            images = build_images(None, default_cache_dir(), self._progress)
            self._cluster.import_images([image.archive for image in images.values()])
            if self.immich_tag:
                self.import_immich_release(self.immich_tag)
            self.timings["provision"] = time.monotonic() - started
        elif self.kubeconfig is None:
            raise ClusterSetupError("--target cluster needs a cluster: --cluster offline (build and run one here) or "
                                    "--kubeconfig PATH / KUBECONFIG (an existing kind or k3s cluster)")
        self.kube = Kube(self.kubeconfig, NAMESPACE)
        ready = self.kube.run("get", "--raw", "/readyz", namespaced=False, check=False, timeout=30)
        if ready.returncode != 0:
            raise ClusterSetupError(f"the cluster of {self.kubeconfig} does not answer: "
                                    f"{(ready.stderr or ready.stdout).strip()[:300]}")
        if not self.offline:
            self.node_ip = os.environ.get(NODE_ADDRESS_ENV) or "127.0.0.1"
        from ..images.edge_material import default_component_dir, prepare_edge_material

        self.material = prepare_edge_material(default_component_dir())
        self.aud = self.material.aud
        self.team_domain = self.material.team_domain
        self.public_hostname = self.material.public_hostname
        if self.deploy:
            self._deploy()
        self._lan = Endpoint(f"http://{self.node_ip}:{self.kube.node_port('immich-server', 'http')}")
        self._external = Endpoint(f"http://{self.node_ip}:{self.material.node_port}",
                                  {"Host": self.public_hostname})
        # Ready pods reach kube-proxy's NodePort rules a moment later: wait until both node ports answer.
        wait_until(lambda: self.server_reachable() and port_open(self.material.node_port, self.node_ip),
                   timeout=90, interval=0.5, what=f"the NodePorts on {self.node_ip} answering")
        self._api_key = os.environ.get(API_KEY_ENV) or bootstrap_user(self._lan)
        self.timings["ready"] = time.monotonic() - started
        self._progress(f"cluster target ready in {self.timings['ready']:.1f}s: LAN {self._lan.url}, "
                       f"public hostname {self._external.url} (Host: {self.public_hostname})")

    def _deploy(self) -> None:
        began = time.monotonic()
        if self.kube.run("get", "namespace", NAMESPACE, namespaced=False, check=False).returncode == 0:
            self._progress(f"deleting the previous namespace {NAMESPACE}")
            self.kube.run("delete", "namespace", NAMESPACE, "--wait=true", namespaced=False, timeout=300)
        self._prepare_host_folders()
        self._ensure_overlay_secrets()
        self._progress(f"applying stack/overlays/{self.overlay}"
                       f"{f' with Immich {self.immich_tag}' if self.immich_tag else ''}")
        self.apply_release(self.immich_tag)
        took = self.kube.wait_rollout(timeout=ROLLOUT_TIMEOUT)
        self.timings["rollout"] = time.monotonic() - began
        self._progress(f"every Deployment Available ({took:.1f}s after apply)")

    def apply_release(self, immich_tag: str | None) -> float:
        """Apply the overlay, with the Immich server and machine learning at ``immich_tag`` when given (the
        stack pins both to one release). Returns the time of the apply (for waiting on fresh pods)."""
        rendered = self.kube.run("kustomize", str(OVERLAYS / self.overlay), namespaced=False).stdout
        if immich_tag:
            rendered = set_immich_tag(rendered, immich_tag)
        applied_at = time.time()
        self.kube.run("apply", "-f", "-", namespaced=False, stdin=rendered, timeout=180)
        return applied_at

    def import_immich_release(self, immich_tag: str) -> None:
        """Offline cluster: build (or take from the cache) the API double images for ``immich_tag`` and import them.
        A tag VERSION-FAULT is the deliberately broken build of VERSION (see immich_conformance.double)."""
        if self._cluster is None:
            return
        from ..images.build import build_images, default_cache_dir
        from ..images.recipes import BuildOptions

        images = build_images(list(IMMICH_IMAGE_NAMES), default_cache_dir(), self._progress,
                              options=BuildOptions.for_immich_tag(immich_tag))
        self._cluster.import_images([image.archive for image in images.values()])

    def _prepare_host_folders(self) -> None:
        """A fresh NAS library and internal drive on the node (the node is this machine, or kind's mounts).

        Only folders the suite made itself (a marker file beside each) are emptied: anything else there is
        someone's data, and the deployment stops with a message instead.
        """
        settings = overlay_settings()
        nas, pg, models = (self.host_path(settings[k]) for k in ("nasLibraryPath", "postgresDataPath",
                                                                 "modelCachePath"))
        for folder in (nas, pg, models):
            marker = folder.with_name(folder.name + TEST_DATA_MARKER)
            if folder.exists() and any(folder.iterdir()) and not marker.exists():
                raise ClusterSetupError(f"{folder} holds data the suite did not make: the test deployment would "
                                        "overwrite it. Move it away, or point stack/overlays/kind at other folders.")
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            marker.write_text("made by the Immich conformance suite for a test deployment; emptied on each one\n")
        os.chown(pg, POSTGRES_UID, POSTGRES_UID)
        pg.chmod(0o700)

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

    def _ensure_overlay_secrets(self) -> None:
        """The kind overlay's git-ignored secret files: made for this test deployment when they are missing."""
        folder = KIND_OVERLAY / "secrets"
        for example in folder.glob("*.env.example"):
            target = example.with_suffix("")
            if target.exists():
                continue
            text = example.read_text()
            text = "\n".join(
                f"{line.split('=', 1)[0]}={secrets.token_hex(16)}" if line.startswith(("DB_PASSWORD=",
                                                                                          "TUNNEL_TOKEN="))
                else line for line in text.splitlines()
            ) + "\n"
            target.write_text(text)
            target.chmod(0o600)
            self._progress(f"made {target.relative_to(STACK_DIR.parent)} for this test deployment")

    def close(self) -> None:
        if self._port_forward is not None:
            self._port_forward.stop()
            self._port_forward = None
        if self._cluster is not None and not self.keep:
            self._cluster.down()
            self._cluster = None

    # --- what the scenarios use ------------------------------------------------------------------------------------
    @property
    def origin(self) -> Endpoint:
        """The origin proxy Service, through a port-forward (ClusterIPs are not routable from every host)."""
        if self._origin is None:
            port = free_port()
            self._port_forward = ManagedProcess(
                "port-forward-origin-proxy",
                self.kube.argv("port-forward", "service/origin-proxy", f"{port}:8080", "--address", "127.0.0.1"),
                log_path=Path(os.environ.get("TMPDIR", "/tmp")) / f"immich-conformance-port-forward-{port}.log",
            ).start()
            self._port_forward.wait_ready(lambda: port_open(port), timeout=30)
            self._origin = Endpoint(f"http://127.0.0.1:{port}", {"Host": self.public_hostname})
        return self._origin

    @property
    def service_token_headers(self) -> dict[str, str]:
        return self.material.service_token_headers

    def access_keys(self) -> KeyRing:
        return KeyRing.load(self.material.key_ring_file)

    @property
    def nas_root(self) -> Path:
        return self.host_path(overlay_settings()["nasLibraryPath"])

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

    # --- what only a cluster can show ------------------------------------------------------------------------------
    def deployments(self) -> dict[str, dict]:
        return {d["metadata"]["name"]: d for d in self.kube.deployments()}

    def wait_available(self, names: list[str] | None = None, *, since: float = 0.0,
                       timeout: float = ROLLOUT_TIMEOUT) -> float:
        return self.kube.wait_rollout(since=since, timeout=timeout, names=names)

    def restart(self, deployment: str) -> float:
        """Delete the Deployment's pods and wait for fresh ones to be Ready; seconds taken."""
        since = time.time()
        selector = self.deployments()[deployment]["spec"]["selector"]["matchLabels"]
        self.kube.run("delete", "pods", "-l", ",".join(f"{k}={v}" for k, v in selector.items()), "--wait=false")
        return self.wait_available([deployment], since=since)

    def restart_without_waiting(self, deployment: str) -> float:
        since = time.time()
        selector = self.deployments()[deployment]["spec"]["selector"]["matchLabels"]
        self.kube.run("delete", "pods", "-l", ",".join(f"{k}={v}" for k, v in selector.items()), "--wait=false")
        return since

    def stays_unready(self, deployment: str, *, since: float, seconds: float) -> bool:
        """True when no pod of ``deployment`` created after ``since`` becomes Ready within ``seconds``."""
        selector = self.deployments()[deployment]["spec"]["selector"]["matchLabels"]
        try:
            wait_until(lambda: self.kube.ready_pods(selector, since=since), timeout=seconds, interval=1.0,
                       what=f"a Ready {deployment} pod")
        except WaitTimeout:
            return True
        return False

    def unmount_nas(self) -> None:
        """The NAS share goes away: its library folder is no longer there on the node (moved aside, kept whole)."""
        nas = self.nas_root
        nas.rename(nas.with_name(nas.name + ".unmounted"))

    def mount_nas(self) -> None:
        nas = self.nas_root
        nas.with_name(nas.name + ".unmounted").rename(nas)

    def tunnel_destinations(self) -> list[str]:
        """Where the tunnel (the edge stand-in in cloudflared's place) delivers: every --origin it is given."""
        spec = self.deployments()["edge-standin"]["spec"]["template"]["spec"]
        args = [a for c in spec["containers"] for a in [*c.get("command", []), *c.get("args", [])]]
        return [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--origin"]

    def can_connect(self, source: str, destination: str) -> bool:
        """Whether a TCP connection from a pod of ``source`` to ``destination``'s Service port succeeds."""
        port = SERVICE_PORTS[destination]
        probe = (f"import socket,sys\ntry:\n socket.create_connection(('{destination}',{port}),3).close()\n"
                 "except OSError:\n sys.exit(1)")
        result = self.kube.run("exec", f"deployment/{source}", "--", PYTHON_IN_IMAGES, "-c", probe,
                               check=False, timeout=30)
        if result.returncode not in (0, 1):
            raise KubeError(f"cannot probe from {source}: {result.stderr.strip()}")
        return result.returncode == 0

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
            return httpx.get(f"{self._lan.url}/api/server/ping", timeout=3).status_code == 200
        except httpx.HTTPError:
            return False
