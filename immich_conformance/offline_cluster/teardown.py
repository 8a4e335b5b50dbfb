"""The offline cluster's teardown, one method per phase: stop everything, then put the machine back as the record
of `up` says it was. Safe to run twice and after a crash."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from immich_conformance.procs import WaitTimeout, wait_until

from . import configs, layout, machine, network
from .daemons import stop_pids, wait_reaped
from .errors import ClusterError

if TYPE_CHECKING:
    from .lifecycle import OfflineCluster

# What `down` keeps under the state dir: the logs, and containerd's content store (imported images).
KEPT = ("logs", "containerd")
KEPT_IN_CONTAINERD = ("root", "imported.json")


class Teardown:
    def __init__(self, cluster: OfflineCluster) -> None:
        self.cluster = cluster

    def run(self) -> None:
        """Stop everything and put the machine back as the record of `up` says it was. Safe to run twice and after
        a crash. One method per phase, in this order; each returns what it could not undo."""
        try:
            before = machine.MachineSnapshot.from_json(self.cluster.state.machine_record.read_text())
        except (OSError, ValueError, TypeError):
            before = None
        problems: list[str] = []
        steps: list[str] = []
        stopped: list[int] = []
        phases: list[tuple[str, Callable[[], list[str]]]] = [
            ("components", lambda: self._stop_components(stopped)),
            ("pods and containerd", lambda: self._stop_pods_and_containerd(stopped)),
            ("kube-proxy --cleanup", self._clean_kube_proxy_rules),
            ("mounts", lambda: self._unmount_pods_and_namespaces(before)),
            ("links", self._remove_links),
            ("iptables and ipsets", lambda: self._remove_rules_and_sets(before)),
            ("files", lambda: self._restore_machine_and_state(before)),
            ("reaped", lambda: self._reap(stopped)),
        ]
        for name, phase in phases:
            mark = time.monotonic()
            problems += phase()
            steps.append(f"{name} {time.monotonic() - mark:.1f}s")
        self.cluster.progress("teardown: " + ", ".join(steps))
        if problems:
            raise ClusterError("the cluster is stopped but some of it could not be removed: " + "; ".join(problems)
                               + ". Fix these by hand (or run `cluster down` again)")

    def _stop_components(self, stopped: list[int]) -> list[str]:
        """The kubelet first (so it restarts nothing), then the policy controller, kube-proxy and the control plane
        together. The API server can hang in its graceful shutdown after it stopped serving: its state is thrown
        away with etcd's anyway, so it gets a few seconds and then SIGKILL."""
        stopped.append(self.cluster.daemons["kubelet"].stop())
        control = ("kube-router", "kube-proxy", "kube-scheduler", "kube-controller-manager", "kube-apiserver")
        pids = [pid for pid in (self.cluster.daemons[n].recorded_pid() for n in control) if pid]
        stop_pids(pids, timeout=5.0)
        stopped.extend(pids + [self.cluster.daemons[name].stop() for name in (*control, "etcd")])
        return []

    def _stop_pods_and_containerd(self, stopped: list[int]) -> list[str]:
        """Every pod's processes, then containerd's records of them, then containerd and its shims."""
        stop_pids(sorted(machine.pod_pids()), timeout=5.0, first=signal.SIGKILL)
        if self.cluster.daemons["containerd"].alive() and self.cluster._containerd_answers():
            self.cluster._purge_containers()
        stopped.append(self.cluster.daemons["containerd"].stop())
        leftover = self.cluster._ours()
        stragglers = stop_pids(leftover, timeout=10.0)
        stopped.extend(leftover)
        return [f"processes that would not exit: {stragglers}"] if stragglers else []

    def _clean_kube_proxy_rules(self) -> list[str]:
        kube_proxy = self.cluster.bin / "kube-proxy"
        if kube_proxy.exists() and shutil.which("iptables"):
            subprocess.run([str(kube_proxy), "--cleanup"], capture_output=True, text=True, timeout=60)
        return []

    def _unmount_pods_and_namespaces(self, before: machine.MachineSnapshot | None) -> list[str]:
        """Pod volumes, container root filesystems and network namespaces, then the namespaces themselves."""
        problems = self._unmount_all()
        netns_before = set(before.netns) if before else set()
        for name in machine.network_namespaces():
            if name.startswith("cni-") and name not in netns_before:
                subprocess.run(["ip", "netns", "delete", name], capture_output=True)
        return problems

    def _remove_links(self) -> list[str]:
        """The bridge's veths go with their namespaces; then the bridge and the node's pair."""
        self._wait_bridge_ports_gone()
        network.delete_links()
        return []

    def _remove_rules_and_sets(self, before: machine.MachineSnapshot | None) -> list[str]:
        """The kubelet's, kube-proxy's, kube-router's and the CNI plugins' chains, the egress guard last; then
        kube-router's ipsets (once no rule uses them). What existed before `up` stays."""
        keep = set()
        if before:
            keep = {" ".join(r.split()[:1] + r.split()[2:3] + r.split()[4:5]) for r in before.iptables
                    if r.split()[3:4] == ["-N"]}
        network.remove_cluster_chains(keep)
        return [f"ipset {name} could not be destroyed" for name in
                network.remove_cluster_ipsets(set(before.ipsets) if before else set())]

    def _restore_machine_and_state(self, before: machine.MachineSnapshot | None) -> list[str]:
        """The cgroups the kubelet made, kernel settings, default folders the components made, and the state dir
        less the logs and the image store."""
        problems: list[str] = []
        top_before = set(before.cgroups) if before else set()
        for hierarchy in machine.cgroup_hierarchies():
            if f"{hierarchy.name}/kubepods" not in top_before:
                _remove_cgroup_tree(hierarchy / "kubepods")
        if before:
            machine.restore_sysctls(before.sysctls)
        for path, existed in (before.paths if before else {}).items():
            if not existed and os.path.lexists(path):
                problems += self._remove_tree(Path(path))
        problems += self._remove_tree(configs.SHIM_SOCKET_DIR.parent)
        s = self.cluster.state
        if s.root.is_dir():
            for child in s.root.iterdir():
                if child.name not in KEPT:
                    problems += self._remove_tree(child)
            if s.containerd.is_dir():
                for child in s.containerd.iterdir():
                    if child.name not in KEPT_IN_CONTAINERD:
                        problems += self._remove_tree(child)
        return problems

    def _reap(self, stopped: list[int]) -> list[str]:
        """What was started by a command that has exited is reaped by init: no exited component stays a zombie."""
        exited = [pid for pid in machine.all_pids()
                  if machine.process_state(pid) == "Z" and machine.process_comm(pid) in machine.COMPONENT_COMMS]
        wait_reaped([pid for pid in stopped if pid] + exited)
        return []

    def _unmount_all(self) -> list[str]:
        for _attempt in range(3):
            left = self.cluster._mounts_left()
            if not left:
                return []
            for path in sorted(left, key=lambda p: p.count("/"), reverse=True):
                if subprocess.run(["umount", path], capture_output=True).returncode != 0:
                    subprocess.run(["umount", "-l", path], capture_output=True)
        left = self.cluster._mounts_left()
        return [f"still mounted: {', '.join(left)}"] if left else []

    def _wait_bridge_ports_gone(self) -> None:
        master = Path(f"/sys/class/net/{layout.BRIDGE}/brif")
        with contextlib.suppress(WaitTimeout):
            wait_until(lambda: not master.is_dir() or not any(master.iterdir()), timeout=10.0, interval=0.1,
                       what="pod network devices to go")
        if master.is_dir():
            for port in master.iterdir():
                subprocess.run(["ip", "link", "delete", port.name], capture_output=True)

    def _remove_tree(self, path: Path) -> list[str]:
        """rm -r that never crosses into a mounted file system."""
        if not os.path.lexists(path):
            return []
        prefix = str(path) + "/"
        mounted = [m for m in (e.rsplit(" (", 1)[0] for e in machine.mounts()) if (m + "/").startswith(prefix)]
        if mounted:
            return [f"{path} not removed: still mounted {', '.join(mounted)}"]
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError as exc:
            return [f"{path} not removed: {exc}"]
        return []


def _remove_cgroup_tree(root: Path) -> None:
    if not root.is_dir():
        return
    for dirpath, _dirs, _files in sorted(os.walk(root), key=lambda t: t[0].count("/"), reverse=True):
        with contextlib.suppress(OSError):
            os.rmdir(dirpath)


