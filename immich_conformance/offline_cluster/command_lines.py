"""The command line of each of the offline cluster's components (see cluster.COMPONENTS for the start order)."""

from __future__ import annotations

from pathlib import Path

from . import layout
from .layout import StateLayout
from .pki import Pki


def command_line(name: str, bin_dir: Path, s: StateLayout, p: Pki) -> list[str]:
    """The command line that runs component ``name`` of the cluster."""
    node_ip = layout.NODE_IP
    if name == "containerd":
        return [str(bin_dir / "containerd"), "--config", str(s.containerd_config)]
    if name == "etcd":
        peer = f"https://127.0.0.1:{layout.ETCD_PEER_PORT}"
        client = f"https://127.0.0.1:{layout.ETCD_CLIENT_PORT}"
        return [str(bin_dir / "etcd"), "--name", layout.NODE_NAME, "--data-dir", str(s.etcd_data),
                "--listen-client-urls", client, "--advertise-client-urls", client,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", f"{layout.NODE_NAME}={peer}", "--initial-cluster-state", "new",
                "--cert-file", str(p.cert("etcd-server")), "--key-file", str(p.key("etcd-server")),
                "--trusted-ca-file", str(p.ca_cert), "--client-cert-auth",
                "--peer-cert-file", str(p.cert("etcd-server")), "--peer-key-file", str(p.key("etcd-server")),
                "--peer-trusted-ca-file", str(p.ca_cert), "--peer-client-cert-auth",
                "--listen-metrics-urls", "", "--log-level", "warn"]
    if name == "kube-apiserver":
        return [str(bin_dir / "kube-apiserver"),
                f"--advertise-address={node_ip}", f"--bind-address={node_ip}",
                f"--secure-port={layout.API_PORT}",
                f"--etcd-servers=https://127.0.0.1:{layout.ETCD_CLIENT_PORT}",
                f"--etcd-cafile={p.ca_cert}", f"--etcd-certfile={p.cert('apiserver-etcd-client')}",
                f"--etcd-keyfile={p.key('apiserver-etcd-client')}",
                f"--client-ca-file={p.ca_cert}",
                f"--tls-cert-file={p.cert('apiserver')}", f"--tls-private-key-file={p.key('apiserver')}",
                f"--kubelet-certificate-authority={p.ca_cert}",
                f"--kubelet-client-certificate={p.cert('apiserver-kubelet-client')}",
                f"--kubelet-client-key={p.key('apiserver-kubelet-client')}",
                "--kubelet-preferred-address-types=InternalIP",
                "--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
                f"--service-account-issuer=https://kubernetes.default.svc.{layout.CLUSTER_DOMAIN}",
                f"--service-account-key-file={p.sa_pub}", f"--service-account-signing-key-file={p.sa_key}",
                f"--service-cluster-ip-range={layout.SERVICE_CIDR}",
                f"--service-node-port-range={layout.NODE_PORTS[0]}-{layout.NODE_PORTS[1]}",
                "--allow-privileged=true", "--profiling=false", f"--cert-dir={s.run / 'apiserver-certs'}"]
    if name == "kube-controller-manager":
        kubeconfig = s.component_kubeconfig("controller-manager")
        return [str(bin_dir / "kube-controller-manager"), f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}", f"--authorization-kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1", f"--secure-port={layout.CONTROLLER_MANAGER_PORT}",
                f"--client-ca-file={p.ca_cert}", f"--root-ca-file={p.ca_cert}",
                f"--service-account-private-key-file={p.sa_key}", "--use-service-account-credentials=true",
                f"--cluster-signing-cert-file={p.ca_cert}", f"--cluster-signing-key-file={p.ca_key}",
                f"--service-cluster-ip-range={layout.SERVICE_CIDR}", f"--cluster-cidr={layout.POD_CIDR}",
                "--leader-elect=false", "--profiling=false", f"--cert-dir={s.run / 'controller-manager-certs'}"]
    if name == "kube-scheduler":
        kubeconfig = s.component_kubeconfig("scheduler")
        return [str(bin_dir / "kube-scheduler"), f"--config={s.config('scheduler.yaml')}",
                f"--authentication-kubeconfig={kubeconfig}", f"--authorization-kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1", f"--secure-port={layout.SCHEDULER_PORT}",
                f"--client-ca-file={p.ca_cert}", f"--cert-dir={s.run / 'scheduler-certs'}"]
    if name == "kubelet":
        return [str(bin_dir / "kubelet"), f"--config={s.config('kubelet.yaml')}",
                f"--kubeconfig={s.component_kubeconfig('kubelet')}", f"--root-dir={s.kubelet_root}",
                f"--cert-dir={s.kubelet_root / 'pki'}", f"--node-ip={node_ip}",
                f"--hostname-override={layout.NODE_NAME}"]
    if name == "kube-proxy":
        return [str(bin_dir / "kube-proxy"), f"--config={s.config('kube-proxy.yaml')}"]
    if name == "kube-router":  # the policy controller only: the bridge CNI and kube-proxy do the rest
        return [str(bin_dir / "kube-router"), f"--kubeconfig={s.kubeconfig}", "--run-firewall=true",
                "--run-router=false", "--run-service-proxy=false", "--enable-cni=false",
                "--enable-ipv4=true", "--enable-ipv6=false",
                f"--hostname-override={layout.NODE_NAME}", "--health-port=0", "--metrics-port=0"]
    raise KeyError(name)
