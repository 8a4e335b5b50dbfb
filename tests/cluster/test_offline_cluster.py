"""The offline cluster for real: one `up` for the module, workloads on it, the egress guard, and a `down` that leaves
the machine as it was. The tests hold in any order: a test after the `down` brings the cluster up again first, and
the web server the host-folder, NodePort and DNS tests read is made by the first of them that runs."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from immich_conformance import versions
from immich_conformance.offline_cluster import ClusterInfo, KubeApi, OfflineCluster, coredns, layout, network
from immich_conformance.offline_cluster.machine import MachineSnapshot
from immich_conformance.offline_cluster.packages import CLUSTER_PACKAGES, TEST_PACKAGES, ensure_packages
from immich_conformance.procs import wait_until

from ..shared_cluster import SharedCluster
from .fixtures import BUSYBOX_IMAGE, busybox_image, create_namespace, run_pod, unique

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="the offline cluster needs root (containerd, kubelet, iptables)"),
]

OUTSIDE = "203.0.113.10"  # TEST-NET-3: a documentation address outside the machine


class Run:
    def __init__(self, cluster: OfflineCluster, before: MachineSnapshot, workdir: Path) -> None:
        self.cluster = cluster
        self.before = before
        self.images = workdir / "images"
        self.images.mkdir()
        self.namespace = unique("conformance")
        self.host_dir = workdir / "hostpath"
        self.stamp = f"written-{time.time_ns()}"
        self.info, self.api = self.up()

    def up(self) -> tuple[ClusterInfo, KubeApi]:
        """The cluster up with busybox imported and the run's namespace made."""
        info = self.cluster.up()
        self.cluster.import_images([busybox_image(self.images).archive])
        api = self.cluster.api()
        create_namespace(api, self.namespace)
        return info, api


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, shared_cluster: SharedCluster) -> Iterator[Run]:
    """The cluster from a stopped machine: the session's own cluster is taken down first and brought back after."""
    cluster = OfflineCluster(progress=lambda msg: print(f"[cluster] {msg}", flush=True))
    if not shared_cluster.stop_for("the offline cluster's own up and down"):
        pytest.skip(f"a cluster was running from {cluster.state.root} before the tests: these tests would replace it")
    running = [name for name, state in cluster.status().components.items() if state != "stopped"]
    if running:
        pytest.skip(f"a cluster is partly running from {cluster.state.root} ({', '.join(running)}): "
                    "`immich-conformance cluster down` first")
    ensure_packages([*CLUSTER_PACKAGES, *TEST_PACKAGES])
    before = MachineSnapshot.take((cluster.bin, cluster.state.root))
    try:
        yield Run(cluster, before, tmp_path_factory.mktemp("offline-cluster"))
    finally:
        cluster.down()
        shared_cluster.restore()


@pytest.fixture(autouse=True)
def _up(request: pytest.FixtureRequest, run: Run) -> None:
    """Up again for a test that comes after the `down` test (in another order than the file's)."""
    if request.function is not test_down_leaves_the_machine_as_it_found_it and not run.cluster.status().running:
        run.info, run.api = run.up()


@pytest.fixture
def web(run: Run) -> int:
    """A busybox web server that wrote the run's stamp into the run's host folder (a hostPath volume), behind the
    NodePort Service `web`, its pod Ready; the node port. Applied again by each test that asks (no change once
    there)."""
    run.host_dir.mkdir(exist_ok=True)
    script = (f"echo {run.stamp} > /data/from-pod.txt && echo immich-conformance-web > /www/index.html "
              "&& exec httpd -f -p 8080 -h /www")
    run.api.apply(httpd_deployment(run.namespace, "web", script, f"""
        volumeMounts: [{{name: data, mountPath: /data}}]
      volumes:
      - name: data
        hostPath: {{path: {run.host_dir}, type: Directory}}"""))
    node_port = expose_on_node_port(run, "web")
    run.api.wait_pods_ready(run.namespace, "app=web", timeout=120)
    return node_port


def httpd_deployment(namespace: str, app: str, script: str, extra: str = "") -> str:
    """A one-pod Deployment of busybox running ``script`` (which serves port 8080), ready once the port is open;
    ``extra`` goes on after the container's readiness probe (volume mounts, then the pod's volumes)."""
    return f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: {app}, namespace: {namespace}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: {app}}}}}
  template:
    metadata: {{labels: {{app: {app}}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: {BUSYBOX_IMAGE}
        imagePullPolicy: Never
        command: ["/bin/sh", "-c", "{script}"]
        ports: [{{containerPort: 8080}}]
        readinessProbe:
          tcpSocket: {{port: 8080}}
          periodSeconds: 1{extra}
"""


def expose_on_node_port(run: Run, app: str) -> int:
    """A NodePort Service named ``app`` in front of port 8080 of the pods labelled ``app``; its node port."""
    run.api.apply(f"""apiVersion: v1
kind: Service
metadata: {{name: {app}, namespace: {run.namespace}}}
spec:
  type: NodePort
  selector: {{app: {app}}}
  ports: [{{port: 80, targetPort: 8080}}]
""")
    return int(run.api.get(f"/api/v1/namespaces/{run.namespace}/services/{app}")["spec"]["ports"][0]["nodePort"])


def http_text(url: str) -> str | None:
    """The body ``url`` answers, stripped; None when it is empty."""
    with urllib.request.urlopen(url, timeout=3) as resp:
        return resp.read().decode().strip() or None


def test_node_is_ready_and_reports_the_pinned_release(run: Run) -> None:
    node = run.api.get(f"/api/v1/nodes/{layout.NODE_NAME}")
    assert run.api.node_ready(layout.NODE_NAME)
    assert node["status"]["nodeInfo"]["kubeletVersion"] == f"v{versions.KUBERNETES_VERSION}"
    addresses = {a["type"]: a["address"] for a in node["status"]["addresses"]}
    assert addresses["InternalIP"] == run.info.node_ip == layout.NODE_IP
    assert network.guard_installed()


def test_deployment_with_hostpath_writes_to_the_host(run: Run, web: int) -> None:
    assert (run.host_dir / "from-pod.txt").read_text().strip() == run.stamp


def test_nodeport_answers_on_the_node_address_and_loopback(web: int) -> None:
    for host in (layout.NODE_IP, "127.0.0.1"):
        assert wait_until(lambda host=host: http_text(f"http://{host}:{web}/"), timeout=30, interval=0.5,
                          what=f"NodePort on {host}") == "immich-conformance-web"


def test_a_nodeport_refused_before_its_pod_runs_answers_the_same_client_port_after(run: Run) -> None:
    """A connection from the node to a NodePort with no pod behind it yet is refused; once the pod answers, a new
    connection from the very same client port is answered (the first one left no un-NATed conntrack entry behind).

    kube-proxy refuses the first with an ICMP error from filter INPUT, after conntrack has kept the SYN: without the
    cluster's own refusal in OUTPUT, that entry (SYN_SENT, 120 s) sends the second past kube-proxy's DNAT."""
    node_port = expose_on_node_port(run, "late")

    def connect_from(client_port: int) -> socket.socket:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.settimeout(5)
        sock.bind((layout.NODE_IP, client_port))
        try:
            sock.connect((layout.NODE_IP, node_port))
        except OSError:
            sock.close()
            raise
        return sock

    wait_until(lambda: any(f"--dport {node_port} -j REJECT" in rule
                           for rule in network.iptables_rules("iptables", "filter")),
               timeout=30, interval=0.2, what="kube-proxy refusing the NodePort that has no endpoint")
    probe = socket.socket()
    probe.bind((layout.NODE_IP, 0))
    client_port = probe.getsockname()[1]
    probe.close()
    with pytest.raises(ConnectionRefusedError):
        connect_from(client_port).close()
    serve = "echo late > /www/index.html && exec httpd -f -p 8080 -h /www"
    run.api.apply(httpd_deployment(run.namespace, "late", serve))
    run.api.wait_pods_ready(run.namespace, "app=late", timeout=120)

    wait_until(lambda: http_text(f"http://{layout.NODE_IP}:{node_port}/") == "late", timeout=30, interval=0.5,
               what="the NodePort answering from its pod")
    with connect_from(client_port) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        answer = b"".join(iter(lambda: sock.recv(4096), b""))  # the server closes after its answer (HTTP/1.0)
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"\r\n\r\nlate\n"), answer


def test_cluster_dns_resolves_a_service_name_and_nothing_outside(run: Run, web: int) -> None:
    cluster_ip = run.api.get(f"/api/v1/namespaces/{run.namespace}/services/web")["spec"]["clusterIP"]
    phase, logs = run_pod(run.api, run.namespace, "dns-check", (
        f"nslookup web.{run.namespace}.svc.{layout.CLUSTER_DOMAIN}; echo ---; "
        "nslookup example.com; echo \"outside: $?\"; "
        f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 web.{run.namespace}.svc.{layout.CLUSTER_DOMAIN} 80"))
    resolved, _, rest = logs.partition("---")
    assert cluster_ip in resolved, logs
    assert "NXDOMAIN" in rest and "outside: 1" in rest, logs
    assert "immich-conformance-web" in rest, logs
    assert phase == "Succeeded", logs


def test_cluster_dns_is_built_with_the_corefiles_plugins_only(run: Run) -> None:
    listed = subprocess.run([str(run.cluster.bin / "coredns"), "-plugins"], capture_output=True, text=True,
                            timeout=30, check=True).stdout
    plugins = set(listed.split())  # one plugin per line
    assert set(coredns.PLUGINS) <= plugins, listed
    assert not {"forward", "route53", "etcd", "trace"} & plugins, listed


def test_egress_guard_drops_and_counts_a_pod_reaching_outside(run: Run) -> None:
    before = network.guard_counters()
    phase, logs = run_pod(run.api, run.namespace, "egress-check", (
        f"for try in 1 2; do if printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {OUTSIDE} 80; "
        "then echo REACHED; else echo BLOCKED; fi; done"))
    after = network.guard_counters()
    assert phase == "Succeeded", logs
    assert "REACHED" not in logs and logs.count("BLOCKED") == 2, logs
    assert after.forward_dropped > before.forward_dropped, (before, after)
    assert after.leaked == before.leaked == 0, (before, after)


def test_down_leaves_the_machine_as_it_found_it(run: Run, tmp_path_factory: pytest.TempPathFactory) -> None:
    run.cluster.down()
    after = MachineSnapshot.take((run.cluster.bin, run.cluster.state.root))
    difference = without_mounts_under(run.before.diff(after), tmp_path_factory.getbasetemp().parent)
    assert difference == {}, difference
    assert not any(m.startswith(str(run.cluster.state.root)) for m in after.mounts)
    assert not network.guard_installed()
    status = run.cluster.status()
    assert not status.running and all(v == "stopped" for v in status.components.values())


def without_mounts_under(difference: dict[str, dict[str, list[str]]], folder: Path) -> dict[str, dict[str, list[str]]]:
    """``difference`` less the mounts under ``folder``: pytest's temporary folders, where the suite's other tests
    (run beside this one by pytest -n) mount NAS stand-ins; the cluster mounts nothing there."""
    mounts = {change: [m for m in entries if not m.startswith(f"{folder}/")]
              for change, entries in difference.get("mounts", {}).items()}
    rest = {kind: changes for kind, changes in difference.items() if kind != "mounts"}
    return {**rest, "mounts": mounts} if any(mounts.values()) else rest
