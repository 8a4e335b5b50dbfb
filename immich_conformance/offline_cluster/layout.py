"""Where the offline cluster keeps its state, its build cache and its logs, and the addresses it uses."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from immich_conformance import versions

DEFAULT_STATE_DIR = Path("/var/lib/immich-conformance/cluster")
STATE_ENV = "IMMICH_CONFORMANCE_CLUSTER_STATE"
CACHE_ENV = "IMMICH_CONFORMANCE_CACHE"

# Address plan: none of these ranges can collide with the uplink (documentation and benchmark ranges, RFC 5737/2544).
NODE_NAME = "immich-node"
NODE_IP = "198.18.10.1"
NODE_PREFIX = 24
NODE_LINK = "icnode0"  # holds the node address
NODE_LINK_PEER = "icnode1"  # the other end of the pair, never given an address
BRIDGE = "icbr0"
POD_CIDR = "10.244.0.0/16"
NODE_POD_SUBNET = "10.244.0.0/24"
NODE_POD_GATEWAY = "10.244.0.1"
SERVICE_CIDR = "10.96.0.0/16"
API_SERVICE_IP = "10.96.0.1"
DNS_SERVICE_IP = "10.96.0.10"
CLUSTER_DOMAIN = "cluster.local"
API_PORT = 6443
NODE_PORTS = (30000, 32767)  # the API server's --service-node-port-range
# Ports the cluster listens on (beyond the API server's); all bound to loopback or the node address.
ETCD_CLIENT_PORT = 2379
ETCD_PEER_PORT = 2380
KUBELET_PORT = 10250
KUBELET_HEALTHZ_PORT = 10248
KUBE_PROXY_HEALTHZ_PORT = 10256
KUBE_PROXY_METRICS_PORT = 10249
CONTROLLER_MANAGER_PORT = 10257
SCHEDULER_PORT = 10259
ALL_PORTS = (API_PORT, ETCD_CLIENT_PORT, ETCD_PEER_PORT, KUBELET_PORT, KUBELET_HEALTHZ_PORT,
             KUBE_PROXY_HEALTHZ_PORT, KUBE_PROXY_METRICS_PORT, CONTROLLER_MANAGER_PORT, SCHEDULER_PORT)


def pinned_versions() -> dict[str, str]:
    """Every version the build depends on; the build cache is keyed by all of them."""
    return {
        "kubernetes": f"v{versions.KUBERNETES_VERSION}",
        "etcd": versions.CLUSTER_ETCD_VERSION,
        "containerd": versions.CLUSTER_CONTAINERD_VERSION,
        "runc": versions.CLUSTER_RUNC_VERSION,
        "cni-plugins": versions.CLUSTER_CNI_PLUGINS_VERSION,
        "coredns": versions.CLUSTER_COREDNS_VERSION,
        "pause": versions.CLUSTER_PAUSE_IMAGE,
    }


def cache_key(extra: str = "") -> str:
    text = ";".join(f"{k}={v}" for k, v in sorted(pinned_versions().items())) + extra
    return "k8s-" + versions.KUBERNETES_VERSION + "-" + hashlib.sha256(text.encode()).hexdigest()[:12]


def default_state_dir() -> Path:
    return Path(os.environ.get(STATE_ENV) or DEFAULT_STATE_DIR)


def default_cache_dir() -> Path:
    root = os.environ.get(CACHE_ENV)
    base = Path(root) if root else Path.home() / ".cache" / "immich-conformance"
    return base / "cluster" / cache_key()


@dataclass(frozen=True)
class StateLayout:
    """Every path under the state directory."""

    root: Path

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def log(self, component: str) -> Path:
        return self.logs / f"{component}.log"

    @property
    def run(self) -> Path:
        """Pid files, the record of the machine before `up`, and the rendered configuration."""
        return self.root / "run"

    def pid_file(self, component: str) -> Path:
        return self.run / f"{component}.pid"

    @property
    def machine_record(self) -> Path:
        return self.run / "machine-before.json"

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def etcd_data(self) -> Path:
        return self.root / "etcd"

    @property
    def kubelet_root(self) -> Path:
        return self.root / "kubelet"

    @property
    def pod_logs(self) -> Path:
        return self.root / "pod-logs"

    @property
    def containerd(self) -> Path:
        return self.root / "containerd"

    @property
    def containerd_root(self) -> Path:
        """containerd's content store and metadata: kept by `down` so imported images survive."""
        return self.containerd / "root"

    @property
    def containerd_state(self) -> Path:
        return self.containerd / "state"

    @property
    def containerd_socket(self) -> Path:
        return self.containerd / "containerd.sock"

    @property
    def containerd_config(self) -> Path:
        return self.run / "containerd.toml"

    @property
    def runc_root(self) -> Path:
        return self.containerd / "runc"

    @property
    def cni_conf_dir(self) -> Path:
        return self.root / "cni" / "net.d"

    @property
    def cni_ipam_dir(self) -> Path:
        return self.root / "cni" / "ipam"

    @property
    def images(self) -> Path:
        return self.root / "images"

    @property
    def imported_record(self) -> Path:
        return self.containerd / "imported.json"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "admin.kubeconfig"

    def component_kubeconfig(self, component: str) -> Path:
        return self.run / f"{component}.kubeconfig"

    @property
    def resolv_conf(self) -> Path:
        return self.run / "resolv.conf"

    def config(self, name: str) -> Path:
        return self.run / name
