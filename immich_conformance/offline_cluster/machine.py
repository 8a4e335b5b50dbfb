"""What the cluster may change on the machine, recorded before `up` and compared after `down`.

A snapshot holds the cluster-related processes, every mount, network device, network namespace, iptables rule,
the kernel settings the kubelet, kube-proxy and the CNI plugins change, the top-level cgroups, and whether the
folders the components create by default exist.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..containers.cleanup import BRIDGE_PREFIX
from . import network
from .configs import SHIM_SOCKET_DIR

# Kernel settings written by the kubelet (kernel tunables), kube-proxy (localhost NodePorts, conntrack) and the
# bridge plugin (forwarding): put back by `down`.
SYSCTLS = (
    "net/ipv4/ip_forward",
    "net/ipv4/conf/all/route_localnet",
    "net/ipv4/conf/all/forwarding",
    "net/ipv6/conf/all/forwarding",
    "net/bridge/bridge-nf-call-iptables",
    "net/bridge/bridge-nf-call-ip6tables",
    "net/netfilter/nf_conntrack_max",
    "net/netfilter/nf_conntrack_tcp_timeout_established",
    "net/netfilter/nf_conntrack_tcp_timeout_close_wait",
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
)
# Folders the components create when they run (fixed paths they do not take from configuration).
DEFAULT_PATHS = (
    "/var/lib/cni",  # the CNI library's result cache
    "/var/log/containers",  # the kubelet's log symlinks
    str(SHIM_SOCKET_DIR.parent),  # containerd's shim sockets
    "/var/lib/kubelet",
    "/etc/cni",
    "/opt/cni",
    "/run/nri",
)

# Process names of the cluster's parts (the kernel's 15-character comm).
COMPONENT_COMMS = ("kube-apiserver", "kube-controller", "kube-scheduler", "kubelet", "kube-proxy", "kube-router",
                   "etcd", "containerd", "containerd-shim", "ctr", "coredns", "pause")
CGROUP_ROOT = Path("/sys/fs/cgroup")
# Things another tool on this kind of machine (Docker) adds and removes by itself: not the cluster's doing. Its
# bridges (a containers run names its own icbr-…), their ports (a container's veth) and every rule naming one (a
# network's forwarding and masquerade), its chains, the masquerade of a published port back to its own container
# (measured with Docker 20.10: ``-s A/32 -d A/32 -p tcp -m tcp --dport P -j MASQUERADE``), its mounts and namespaces,
# and its containers' shims (run by Debian's containerd from /usr/bin; the cluster's own run from its build cache).
# A container's veth pair, for the moment between its creation and one end joining the bridge (the other moving into
# the container), has no bridge to name: Docker names both ends veth and 7 hex digits (libnetwork's vethLen), the
# cluster's CNI veth and 8 (RandomVethName: 4 random bytes).
FOREIGN = re.compile(rf"\b(docker0|br-[0-9a-f]{{12}}|{BRIDGE_PREFIX}[0-9a-f]{{10}})\b"
                     r"|DOCKER|/var/lib/docker|/run/docker|^containerd-shim /usr/bin/|^veth[0-9a-f]{7}$"
                     r"|-A POSTROUTING -s (\S+)/32 -d \2/32 -p (tcp|udp) -m (tcp|udp) --dport \d+ -j MASQUERADE$")


def read_sysctls() -> dict[str, str]:
    values: dict[str, str] = {}
    for name in SYSCTLS:
        try:
            values[name] = (Path("/proc/sys") / name).read_text().strip()
        except OSError:
            continue
    return values


def restore_sysctls(values: dict[str, str]) -> list[str]:
    changed = []
    current = read_sysctls()
    for name, value in values.items():
        if current.get(name) != value:
            try:
                (Path("/proc/sys") / name).write_text(value + "\n")
                changed.append(f"{name}={value}")
            except OSError:
                continue
    return changed


def cgroup_hierarchies() -> list[Path]:
    if not CGROUP_ROOT.is_dir():
        return []
    return sorted(p for p in CGROUP_ROOT.iterdir() if p.is_dir() and (p / "cgroup.procs").exists())


def top_cgroups() -> list[str]:
    return sorted(f"{h.name}/{c.name}" for h in cgroup_hierarchies() for c in h.iterdir() if c.is_dir())


def mounts() -> list[str]:
    entries = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        left, _, right = line.partition(" - ")
        fields = left.split()
        rfields = right.split()
        if len(fields) >= 5 and rfields:
            entries.append(f"{_unescape(fields[4])} ({rfields[0]})")
    return sorted(entries)


def _unescape(path: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), path)


def network_namespaces() -> list[str]:
    found = set()
    for folder in ("/run/netns", "/var/run/netns"):
        try:
            found.update(os.listdir(folder))
        except OSError:
            continue
    return sorted(found)


def process_exe(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


def process_comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def process_state(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[0] if ")" in stat else ""


def all_pids() -> list[int]:
    return sorted(int(p) for p in os.listdir("/proc") if p.isdigit())


def pod_pids() -> set[int]:
    """Processes in the kubelet's pod cgroups (every hierarchy)."""
    pids: set[int] = set()
    for hierarchy in cgroup_hierarchies():
        root = hierarchy / "kubepods"
        if not root.is_dir():
            continue
        for dirpath, _dirs, files in os.walk(root):
            if "cgroup.procs" in files:
                try:
                    text = (Path(dirpath) / "cgroup.procs").read_text()
                except OSError:
                    continue
                pids.update(int(x) for x in text.split() if x.isdigit())
    return pids


def cluster_processes(owned_dirs: tuple[Path, ...] = ()) -> list[tuple[int, str, str]]:
    """(pid, comm, exe) of live processes that are part of a cluster: a component's name, an executable under one
    of ``owned_dirs``, or a member of a pod cgroup."""
    in_pods = pod_pids()
    owned = tuple(str(d) + "/" for d in owned_dirs)
    found = []
    for pid in all_pids():
        if pid == os.getpid():
            continue
        comm = process_comm(pid)
        if not comm or process_state(pid) in ("Z", "X", ""):
            continue
        exe = process_exe(pid).removesuffix(" (deleted)")
        if pid in in_pods or comm in COMPONENT_COMMS or (owned and exe.startswith(owned)):
            found.append((pid, comm, exe))
    return found


@dataclass
class MachineSnapshot:
    processes: list[str] = field(default_factory=list)
    mounts: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    netns: list[str] = field(default_factory=list)
    iptables: list[str] = field(default_factory=list)
    sysctls: dict[str, str] = field(default_factory=dict)
    cgroups: list[str] = field(default_factory=list)
    paths: dict[str, bool] = field(default_factory=dict)
    ipsets: list[str] = field(default_factory=list)

    @classmethod
    def take(cls, owned_dirs: tuple[Path, ...] = ()) -> MachineSnapshot:
        rules = []
        for command in network.iptables_commands():
            for table in network.IPTABLES_TABLES:
                rules += [f"{command} -t {table} {r}" for r in network.iptables_rules(command, table)]
        return cls(
            processes=sorted(f"{comm} {exe}" for _pid, comm, exe in cluster_processes(owned_dirs)),
            mounts=mounts(),
            links=network.links_with_masters(),
            netns=network_namespaces(),
            iptables=sorted(rules),
            sysctls=read_sysctls(),
            cgroups=top_cgroups(),
            paths={p: os.path.lexists(p) for p in DEFAULT_PATHS},
            ipsets=network.ipset_names(),
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> MachineSnapshot:
        return cls(**json.loads(text))

    def diff(self, later: MachineSnapshot) -> dict[str, dict[str, list[str]]]:
        """What ``later`` has that this one has not (added) and the other way round (removed), per kind, leaving out
        what Docker manages by itself."""
        out: dict[str, dict[str, list[str]]] = {}
        for kind in ("processes", "mounts", "links", "netns", "iptables", "cgroups", "ipsets"):
            before, after = set(getattr(self, kind)), set(getattr(later, kind))
            added = sorted(x for x in after - before if not FOREIGN.search(x))
            removed = sorted(x for x in before - after if not FOREIGN.search(x))
            if added or removed:
                out[kind] = {"added": added, "removed": removed}
        for kind in ("sysctls", "paths"):
            before_map, after_map = getattr(self, kind), getattr(later, kind)
            changed = sorted(f"{k}: {before_map.get(k)} -> {after_map.get(k)}"
                             for k in set(before_map) | set(after_map) if before_map.get(k) != after_map.get(k))
            if changed:
                out[kind] = {"changed": changed}
        return out
