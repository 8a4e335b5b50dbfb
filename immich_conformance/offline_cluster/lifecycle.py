"""`OfflineCluster`: a real single-node Kubernetes on this machine, built from the Go module proxy, with no registry
and nothing leaving the machine.

`up` installs missing Debian packages, builds (cached), clears what a crashed run left, puts the egress guard in
place, starts containerd, etcd, the control plane, the kubelet and kube-proxy, waits for the node to be Ready and
installs CoreDNS. `down` stops everything and leaves the machine as `up` found it.

A little over 400 lines: the start, one method per phase, in the order it runs; what each phase needs lives beside
it (`build`, `configs`, `command_lines`, `daemons`, `network`, `pki`, `teardown`...).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import configs, coredns, layout, machine, network
from .api_server import KubeApi
from .build import Builder, fmt_duration
from .command_lines import command_line
from .containerd_images import ContainerdImages
from .daemons import Daemon
from .errors import ClusterError
from .layout import StateLayout
from .packages import ensure_packages
from .pause import pause_archive
from .pki import Pki
from .teardown import Teardown

# Start order; `down` stops them in reverse.
# kube-router runs as the NetworkPolicy controller alone: test infrastructure of this cluster, never part of stack/.
COMPONENTS = ("containerd", "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet",
              "kube-proxy", "kube-router")
READY_TIMEOUT = {"containerd": 30.0, "etcd": 60.0, "kube-apiserver": 120.0, "kube-controller-manager": 60.0,
                 "kube-scheduler": 60.0, "kubelet": 60.0, "kube-proxy": 60.0, "kube-router": 60.0}
# The chain kube-router's policy controller makes on its first sync: it enforces from then on.
POLICY_CHAIN = "KUBE-ROUTER-FORWARD"
NODE_READY_TIMEOUT = 120.0
COREDNS_TIMEOUT = 120.0


@dataclass(frozen=True)
class ClusterInfo:
    kubeconfig: Path
    node_ip: str
    api_server: str
    state_dir: Path
    kubectl: list[str]  # argv prefix: kubectl with --kubeconfig


@dataclass(frozen=True)
class ClusterStatus:
    running: bool
    components: dict[str, str]  # component -> "running (pid N)" | "stopped"
    node_ready: bool
    kubeconfig: Path | None
    egress_guard: bool
    state_dir: Path
    problems: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"cluster: {'running' if self.running else 'not running'} (state {self.state_dir})"]
        out += [f"  {name}: {state}" for name, state in self.components.items()]
        out.append(f"  node {layout.NODE_NAME}: {'Ready' if self.node_ready else 'not Ready'}")
        out.append(f"  egress guard: {'in place' if self.egress_guard else 'absent'}")
        if self.kubeconfig:
            out.append(f"  kubeconfig: {self.kubeconfig}")
        out += [f"  problem: {p}" for p in self.problems]
        return out


def _require_root(action: str) -> None:
    if os.geteuid() != 0:
        raise ClusterError(f"`cluster {action}` needs root: it runs containerd and a kubelet, changes network devices "
                           "and iptables rules. Run it as root (for example `sudo -E immich-conformance cluster "
                           f"{action}`)")


class OfflineCluster:
    def __init__(self, state_dir: Path | None = None, *, progress: Callable[[str], None] = print,
                 cache_dir: Path | None = None) -> None:
        self.state = StateLayout((state_dir or layout.default_state_dir()).resolve())
        self.cache_dir = cache_dir or layout.default_cache_dir()
        self.progress = progress
        self.builder = Builder(self.cache_dir, progress=progress)
        self.bin = self.builder.bin_dir
        self.pki = Pki(self.state.pki)
        self.daemons = {name: self._daemon(name) for name in COMPONENTS}
        self.timings: dict[str, float] = {}
        # Whether up() found the cluster already up (started by someone else): then whoever opened it through this
        # object leaves it running when done.
        self.was_up = False

    # == public API =================================================================================================
    @property
    def info(self) -> ClusterInfo:
        return ClusterInfo(
            kubeconfig=self.state.kubeconfig,
            node_ip=layout.NODE_IP,
            api_server=self.api_server,
            state_dir=self.state.root,
            kubectl=[str(self.bin / "kubectl"), "--kubeconfig", str(self.state.kubeconfig)],
        )

    @property
    def api_server(self) -> str:
        return f"https://{layout.NODE_IP}:{layout.API_PORT}"

    def api(self) -> KubeApi:
        return KubeApi(self.api_server, self.pki.ca_cert, self.pki.cert("admin"), self.pki.key("admin"),
                       self.info.kubectl)

    def up(self) -> ClusterInfo:
        _require_root("up")
        started = time.monotonic()
        installed = ensure_packages(progress=self.progress)
        if installed:
            self.progress(f"installed Debian packages: {' '.join(installed)}")
        self.builder.build_all()
        images = [pause_archive(self.cache_dir), coredns.coredns_archive(self.cache_dir, self.bin / "coredns")]
        current = self.status()
        if current.running and current.node_ready and current.egress_guard and not current.problems:
            self.progress(f"the cluster of {self.state.root} is already up (it stays up afterwards)")
            self.was_up = True
            return self.info
        if self._anything_left():
            self.progress("clearing what an earlier run left behind")
            self._teardown()
        self._check_ports()
        try:
            self._start(images)
        except BaseException as exc:
            self.progress(f"up failed ({type(exc).__name__}); stopping what was started (logs stay in "
                          f"{self.state.logs})")
            with contextlib.suppress(Exception):
                self._teardown()
            raise
        self.timings["up"] = time.monotonic() - started
        ready = fmt_duration(self.timings["node_ready"])
        self.progress(f"cluster up in {fmt_duration(self.timings['up'])} (node Ready {ready} after the processes "
                      f"started); kubeconfig {self.state.kubeconfig}")
        return self.info

    def images(self) -> ContainerdImages:
        """The images of containerd's k8s.io namespace (the kubelet's)."""
        return ContainerdImages(self._ctr(), self.progress)

    def import_images(self, archives: Sequence[Path]) -> None:
        """Import image archives into containerd's k8s.io namespace; one already there with the same manifest
        digest is skipped."""
        self.images().import_archives(archives)

    def tag_image(self, existing: str, new: str) -> None:
        """Give an image already in containerd a second name (as a registry would serve one image under two tags)."""
        self.images().tag(existing, new)

    def down(self) -> None:
        _require_root("down")
        started = time.monotonic()
        self._teardown()
        self.timings["down"] = time.monotonic() - started
        self.progress(f"cluster down in {fmt_duration(self.timings['down'])}")

    def status(self) -> ClusterStatus:
        components = {}
        for name, daemon in self.daemons.items():
            pid = daemon.recorded_pid()
            components[name] = f"running (pid {pid})" if pid else "stopped"
        running = all(v != "stopped" for v in components.values())
        problems = []
        node_ready = False
        if running:
            try:
                node_ready = self.api().node_ready(layout.NODE_NAME)
            except (OSError, ValueError, ssl.SSLError) as exc:
                problems.append(f"API server not answering: {exc}")
        elif any(v != "stopped" for v in components.values()):
            problems.append("some components are stopped: run `cluster down` then `cluster up`")
        guard = network.guard_installed() if shutil.which("iptables") else False
        if running and not guard:
            problems.append("the egress guard is missing while the cluster runs: run `cluster down`")
        return ClusterStatus(running=running, components=components, node_ready=node_ready,
                             kubeconfig=self.state.kubeconfig if self.state.kubeconfig.exists() else None,
                             egress_guard=guard, state_dir=self.state.root, problems=problems)

    def wait_default_service_account(self, namespace: str, timeout: float = 30.0) -> None:
        self.api().wait_default_service_account(namespace, timeout=timeout)

    # == start ======================================================================================================
    def _daemon(self, name: str) -> Daemon:
        env = dict(os.environ)
        env["PATH"] = f"{self.bin}:{env.get('PATH', '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin')}"
        return Daemon(name, self._argv(name), log_path=self.state.log(name), pid_file=self.state.pid_file(name),
                      env=env, cwd=self.state.run)

    def _argv(self, name: str) -> list[str]:
        return command_line(name, self.bin, self.state, self.pki)

    def _prepare_state(self) -> None:
        s = self.state
        for folder in (s.run, s.logs, s.etcd_data, s.kubelet_root, s.pod_logs, s.containerd_root,
                       s.containerd_state, s.runc_root, s.cni_conf_dir, s.cni_ipam_dir):
            folder.mkdir(parents=True, exist_ok=True)
        os.chmod(s.etcd_data, 0o700)
        self.pki.create()
        self.pki.kubeconfig(s.kubeconfig, "admin", self.api_server)
        for component, user in (("controller-manager", "controller-manager"), ("scheduler", "scheduler"),
                                ("kube-proxy", "kube-proxy"), ("kubelet", "kubelet-client")):
            self.pki.kubeconfig(s.component_kubeconfig(component), user, self.api_server)
        configs.write(s.containerd_config, configs.containerd_toml(s, self.bin))
        configs.write(s.cni_conf_dir / "10-immich-conformance.conflist", configs.cni_conflist(s))
        configs.write(s.resolv_conf, configs.resolv_conf())
        configs.write(s.config("kubelet.yaml"), configs.kubelet_config(s, self.pki))
        configs.write(s.config("kube-proxy.yaml"), configs.kube_proxy_config(s))
        configs.write(s.config("scheduler.yaml"), configs.scheduler_config(s))

    def _start(self, images: list[Path]) -> None:
        s = self.state
        s.run.mkdir(parents=True, exist_ok=True)
        before = machine.MachineSnapshot.take(self._owned_dirs())
        s.machine_record.write_text(before.to_json())
        self._prepare_state()
        uplink = network.uplink()
        network.create_node_link()
        if uplink:
            network.install_guard(uplink)
        else:
            self.progress("no default route on this machine: nothing can leave it, the egress guard has no uplink")
        network.install_nodeport_refusal()
        processes_started = time.monotonic()

        containerd = self._launch("containerd")
        containerd.wait_ready(self._containerd_answers, timeout=READY_TIMEOUT["containerd"], what="ready")
        self._purge_containers()
        self.import_images(images)

        etcd = self._launch("etcd")
        etcd.wait_ready(self._etcd_healthy, timeout=READY_TIMEOUT["etcd"], what="healthy")
        apiserver = self._launch("kube-apiserver")
        apiserver.wait_ready(self._apiserver_ready, timeout=READY_TIMEOUT["kube-apiserver"], what="ready (/readyz)")
        for name in ("kube-controller-manager", "kube-scheduler"):
            self._launch(name)
        for name, port in (("kube-controller-manager", layout.CONTROLLER_MANAGER_PORT),
                           ("kube-scheduler", layout.SCHEDULER_PORT)):
            self.daemons[name].wait_ready(lambda port=port: _https_ok(f"https://127.0.0.1:{port}/healthz"),
                                          timeout=READY_TIMEOUT[name], what="healthy")
        kubelet = self._launch("kubelet")
        proxy = self._launch("kube-proxy")
        kubelet.wait_ready(lambda: _http_ok(f"http://127.0.0.1:{layout.KUBELET_HEALTHZ_PORT}/healthz"),
                           timeout=READY_TIMEOUT["kubelet"], what="healthy")
        proxy.wait_ready(lambda: _http_ok(f"http://127.0.0.1:{layout.KUBE_PROXY_HEALTHZ_PORT}/healthz"),
                         timeout=READY_TIMEOUT["kube-proxy"], what="healthy (rules synced)")
        if uplink:
            network.ensure_guard_first()
        api = self.api()
        kubelet.wait_ready(lambda: api.node_ready(layout.NODE_NAME), timeout=NODE_READY_TIMEOUT,
                           what=f"Ready (node {layout.NODE_NAME})")
        self.timings["node_ready"] = time.monotonic() - processes_started
        ready = fmt_duration(self.timings["node_ready"])
        self.progress(f"node {layout.NODE_NAME} Ready {ready} after the processes started")
        policy = self._launch("kube-router")
        policy.wait_ready(lambda: f"-N {POLICY_CHAIN}" in network.iptables_rules("iptables", "filter"),
                          timeout=READY_TIMEOUT["kube-router"], what="enforcing NetworkPolicy (first sync)")
        if uplink:
            network.ensure_guard_first()

        t0 = time.time()
        api.wait_default_service_account("kube-system")
        api.apply(coredns.manifests())
        api.wait_pods_ready("kube-system", "k8s-app=kube-dns", timeout=COREDNS_TIMEOUT, since=t0 - 1)
        api.wait_default_service_account("default")
        if uplink:
            network.ensure_guard_first()
        self.progress(f"CoreDNS ready at {layout.DNS_SERVICE_IP}")

    def _launch(self, name: str) -> Daemon:
        self.progress(f"starting {name} (log {self.state.log(name)})")
        return self.daemons[name].start()

    # -- readiness probes -------------------------------------------------------------------------------------------
    def _ctr(self) -> list[str]:
        return [str(self.bin / "ctr"), "--address", str(self.state.containerd_socket), "--namespace", "k8s.io"]

    def _containerd_answers(self) -> bool:
        if not self.state.containerd_socket.exists():
            return False
        result = subprocess.run([*self._ctr(), "--timeout", "5s", "version"], capture_output=True, text=True)
        return result.returncode == 0

    def _etcd_healthy(self) -> bool:
        ctx = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        ctx.load_cert_chain(str(self.pki.cert("apiserver-etcd-client")), str(self.pki.key("apiserver-etcd-client")))
        with urllib.request.urlopen(f"https://127.0.0.1:{layout.ETCD_CLIENT_PORT}/health", context=ctx,
                                    timeout=3) as resp:
            return json.loads(resp.read()).get("health") == "true"

    def _apiserver_ready(self) -> bool:
        return self.api().get("/readyz") == "ok"

    def _purge_containers(self) -> None:
        """Kill and delete every task, container and sandbox in containerd's k8s.io namespace."""
        ctr = self._ctr()

        def ids(*args: str, header: bool = False) -> list[str]:
            result = subprocess.run([*ctr, "--timeout", "20s", *args], capture_output=True, text=True)
            if result.returncode != 0:
                return []
            lines = result.stdout.splitlines()[1 if header else 0:]
            return [line.split()[0] for line in lines if line.strip()]

        tasks = ids("tasks", "ls", "-q")
        for task in tasks:
            subprocess.run([*ctr, "--timeout", "10s", "tasks", "kill", "-s", "SIGKILL", task], capture_output=True)
        if tasks:
            subprocess.run([*ctr, "--timeout", "60s", "tasks", "rm", "-f", *tasks], capture_output=True)
        sandboxes = ids("sandboxes", "ls", header=True)
        if sandboxes:
            subprocess.run([*ctr, "--timeout", "60s", "sandboxes", "rm", "-f", *sandboxes], capture_output=True)
        containers = ids("containers", "ls", "-q")
        if containers:
            subprocess.run([*ctr, "--timeout", "60s", "containers", "rm", *containers], capture_output=True)

    # == checks =====================================================================================================
    def _check_ports(self) -> None:
        for port in layout.ALL_PORTS:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                # SO_REUSEADDR: connections of an earlier run in TIME_WAIT are no obstacle; a listener is
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind(("0.0.0.0", port))
                except OSError as exc:
                    if exc.errno != errno.EADDRINUSE:
                        raise
                    owner = _port_owner(port)
                    role = "the API server" if port == layout.API_PORT else "a cluster component"
                    raise ClusterError(
                        f"port {port} is busy{f' (held by {owner})' if owner else ''}: {role} needs it. Stop that "
                        "process (if it is another cluster, bring that one down), then run `up` again") from None

    # == teardown ===================================================================================================
    def _owned_dirs(self) -> tuple[Path, ...]:
        return (self.bin, self.state.root)

    def _ours(self) -> list[int]:
        """Live processes of this cluster: components of this state dir or build, and every pod process."""
        owned_root = str(self.state.root) + "/"
        bin_root = str(self.bin) + "/"
        in_pods = machine.pod_pids()
        pids = []
        for pid, _comm, exe in machine.cluster_processes(self._owned_dirs()):
            if pid in in_pods:
                pids.append(pid)
                continue
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if (exe.startswith(bin_root) and owned_root in cmdline + " ") or exe.startswith(owned_root):
                pids.append(pid)
        return pids

    def _anything_left(self) -> bool:
        return (self.state.machine_record.exists() or bool(self._ours()) or bool(self._mounts_left())
                or network.link_exists(layout.NODE_LINK) or network.link_exists(layout.BRIDGE))

    def _mounts_left(self) -> list[str]:
        roots = (str(self.state.root) + "/", str(configs.SHIM_SOCKET_DIR.parent) + "/")
        found = []
        for entry in machine.mounts():
            path = entry.rsplit(" (", 1)[0]
            if (path + "/").startswith(roots) or (path.startswith(("/run/netns/cni-", "/var/run/netns/cni-"))):
                found.append(path)
        return found

    def _teardown(self) -> None:
        Teardown(self).run()


def _port_owner(port: int) -> str:
    result = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True)
    line = result.stdout.strip().splitlines()[0] if result.stdout.strip() else ""
    if "users:" in line:
        return line.split("users:", 1)[1].strip()
    return ""


def _https_ok(url: str) -> bool:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # loopback health endpoint with a self-signed serving certificate
    with urllib.request.urlopen(url, context=ctx, timeout=3) as resp:
        return resp.status == 200


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=3) as resp:
        return resp.status == 200


