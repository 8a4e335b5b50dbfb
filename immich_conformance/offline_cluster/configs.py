"""The configuration files of containerd, the CNI network, the kubelet and kube-proxy, rendered under the state dir."""

from __future__ import annotations

import json
from pathlib import Path

from immich_conformance import versions

from . import layout
from .layout import StateLayout
from .pki import Pki

# containerd puts shim sockets here: unix socket paths are short, so this cannot live under the state dir.
SHIM_SOCKET_DIR = Path("/run/immich-conformance/s")
CNI_NETWORK = "immich-conformance"


def containerd_toml(state: StateLayout, bin_dir: Path) -> str:
    runtime = "plugins.'io.containerd.cri.v1.runtime'"
    return f"""version = 4
root = "{state.containerd_root}"
state = "{state.containerd_state}"

[plugins.'io.containerd.server.v1.grpc']
  address = "{state.containerd_socket}"

[plugins.'io.containerd.server.v1.ttrpc']
  address = "{state.containerd_socket}.ttrpc"

[plugins.'io.containerd.server.v1.debug']
  address = ""

[plugins.'io.containerd.server.v1.metrics']
  address = ""

[plugins.'io.containerd.internal.v1.opt']
  path = "{state.containerd / 'opt'}"

[plugins.'io.containerd.nri.v1.nri']
  disable = true

[plugins.'io.containerd.shim.v1.manager']
  socket_dir = "{SHIM_SOCKET_DIR}"

[plugins.'io.containerd.grpc.v1.cri']
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"

[plugins.'io.containerd.cri.v1.images'.pinned_images]
  sandbox = "{versions.CLUSTER_PAUSE_IMAGE}"

[{runtime}]
  # The machine has no CAP_SYS_RESOURCE: a negative oom_score_adj cannot be written.
  restrict_oom_score_adj = true
  enable_selinux = false
  disable_apparmor = true
  netns_mounts_under_state_dir = true
  cdi_spec_dirs = []

[{runtime}.containerd]
  default_runtime_name = "runc"

[{runtime}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{runtime}.containerd.runtimes.runc.options]
  BinaryName = "{bin_dir / 'runc'}"
  Root = "{state.runc_root}"
  SystemdCgroup = false

[{runtime}.cni]
  bin_dirs = ["{bin_dir}"]
  conf_dir = "{state.cni_conf_dir}"
  max_conf_num = 1
"""


def cni_conflist(state: StateLayout) -> str:
    return json.dumps({
        "cniVersion": "1.0.0",
        "name": CNI_NETWORK,
        "plugins": [
            {
                "type": "bridge",
                "bridge": layout.BRIDGE,
                "isGateway": True,
                # Nothing from a pod is masqueraded to the uplink; the egress guard drops what tries to leave.
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": layout.NODE_POD_SUBNET, "gateway": layout.NODE_POD_GATEWAY}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(state.cni_ipam_dir),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }, indent=2) + "\n"


def resolv_conf() -> str:
    # Pods with dnsPolicy Default (CoreDNS itself) get this: a resolver that answers nothing, so no name leaves.
    return "nameserver 127.0.0.1\n"


def kubelet_config(state: StateLayout, pki: Pki) -> str:
    return f"""apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: {layout.NODE_IP}
port: {layout.KUBELET_PORT}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: {layout.KUBELET_HEALTHZ_PORT}
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: {pki.ca_cert}
authorization:
  mode: Webhook
tlsCertFile: {pki.cert('kubelet-server')}
tlsPrivateKeyFile: {pki.key('kubelet-server')}
rotateCertificates: false
serverTLSBootstrap: false
# cgroup v1 (hybrid) on this kind of machine
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://{state.containerd_socket}
imageServiceEndpoint: unix://{state.containerd_socket}
clusterDomain: {layout.CLUSTER_DOMAIN}
clusterDNS:
- {layout.DNS_SERVICE_IP}
resolvConf: {state.resolv_conf}
podLogsDir: {state.pod_logs}
maxPods: 60
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%
  imagefs.available: 1%
  nodefs.inodesFree: 1%
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
serializeImagePulls: false
enableServer: true
logging:
  format: text
"""


def kube_proxy_config(state: StateLayout) -> str:
    return f"""apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: {state.component_kubeconfig('kube-proxy')}
hostnameOverride: {layout.NODE_NAME}
mode: iptables
clusterCIDR: {layout.POD_CIDR}
bindAddress: {layout.NODE_IP}
healthzBindAddress: 127.0.0.1:{layout.KUBE_PROXY_HEALTHZ_PORT}
metricsBindAddress: 127.0.0.1:{layout.KUBE_PROXY_METRICS_PORT}
# NodePorts answer on the node address and on loopback, never on the uplink.
nodePortAddresses:
- {layout.NODE_IP}/32
- 127.0.0.0/8
iptables:
  localhostNodePorts: true
  masqueradeAll: false
conntrack:
  # 0: leave the machine's conntrack settings as they are
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
"""


def scheduler_config(state: StateLayout) -> str:
    return f"""apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: {state.component_kubeconfig('scheduler')}
leaderElection:
  leaderElect: false
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
