"""The node itself: a CPU the machine-learning image runs on (x86-64-v2), memory for the stack's requests, a
Kubernetes (or k3s) release the stack supports, the kernel features its NetworkPolicy enforcer needs (ipset, xt_set),
and the LAN NodePort free or held by the stack's own Service."""

from __future__ import annotations

import json
import re

from ... import versions
from ..node import Node
from ..settings import DoctorSettings
from ..verdicts import Outcome, failed, passed, warned
from .base import Check, size

GROUP = "node"
# x86-64-v2 (the ML image's baseline) as /proc/cpuinfo names the features: SSE3 is "pni", CMPXCHG16B "cx16".
X86_64_V2_FLAGS = ("cx16", "lahf_lm", "popcnt", "pni", "sse4_1", "sse4_2", "ssse3")
K3S_PATHS = ("/usr/local/bin/k3s", "/usr/bin/k3s", "k3s")
KUBELET_PATHS = ("/usr/local/bin/kubelet", "/usr/bin/kubelet", "kubelet")
# Kernel features of kube-router's NetworkPolicy controller (the one k3s embeds): ipset and the iptables "set" match.
KERNEL_FEATURES = {"ip_set": "CONFIG_IP_SET", "xt_set": "CONFIG_NETFILTER_XT_SET"}
TCP_LISTEN = "0A"


def cpu_flags(node: Node, s: DoctorSettings) -> Outcome:
    text = node.read("/proc/cpuinfo")
    if text is None:
        return warned("cannot read /proc/cpuinfo", "run the doctor on the node itself (or --host ssh://user@node)")
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    if "flags" not in fields:
        if "Features" in fields:
            return passed("an ARM CPU (the machine-learning image is built for arm64; x86-64-v2 does not apply)")
        return warned("no CPU flags in /proc/cpuinfo", "check the CPU by hand: the ML image needs x86-64-v2")
    flags = set(fields["flags"].split())
    missing = [flag for flag in X86_64_V2_FLAGS if flag not in flags]
    model = fields.get("model name", "this CPU")
    if missing:
        return failed(f"{model} lacks {', '.join(missing)}: not x86-64-v2, the machine-learning image cannot run",
                      "run machine learning on another machine (Immich's MACHINE_LEARNING_URL) or turn it off; in a "
                      "VM give the guest the host's CPU model (e.g. Proxmox/QEMU cpu: host)")
    if "avx2" not in flags:
        return warned(f"{model} is x86-64-v2 but has no AVX2: machine learning runs, slowly",
                      "expect slow smart search and face detection, or run machine learning on a newer machine")
    return passed(f"{model} has every x86-64-v2 flag and AVX2")


def memory(node: Node, s: DoctorSettings) -> Outcome:
    text = node.read("/proc/meminfo") or ""
    match = re.search(r"^MemTotal:\s+(\d+)\s*kB", text, re.MULTILINE)
    if match is None:
        return warned("cannot read MemTotal from /proc/meminfo", "check the node's memory by hand")
    total = int(match.group(1)) * 1024
    wanted = s.memory_requests
    found = f"{size(total)} of memory; the stack's pods request {size(wanted)}"
    if total < wanted:
        return failed(f"{found}: the scheduler cannot place every pod", "add memory to the node")
    if total < wanted + s.limits.memory_headroom:
        return warned(f"{found}: less than {size(s.limits.memory_headroom)} left for the system and k3s",
                      "add memory to the node")
    return passed(found)


def parse_version(text: str) -> tuple[int, int, int] | None:
    match = re.search(r"v(\d+)\.(\d+)\.(\d+)", text)
    return (int(match.group(1)), int(match.group(2)), int(match.group(3))) if match else None


def minor(text: str) -> tuple[int, int]:
    major, minor_number = text.split(".")[:2]
    return int(major), int(minor_number)


def kubernetes_version(node: Node, s: DoctorSettings) -> Outcome:
    binary = node.which(*K3S_PATHS) or node.which(*KUBELET_PATHS)
    if binary is None:
        return warned("neither k3s nor kubelet is installed on the node",
                      f"install k3s {versions.KUBERNETES_MINOR} (curl -sfL https://get.k3s.io | "
                      f"INSTALL_K3S_CHANNEL=v{versions.KUBERNETES_MINOR} sh -)")
    done = node.run("%s --version", binary)
    version = parse_version(done.stdout) if done.rc == 0 else None
    if version is None:
        return warned(f"{binary} --version printed no version ({(done.stdout or done.stderr).strip()[:80]})",
                      "check the Kubernetes version by hand")
    shown = f"{binary.rsplit('/', 1)[-1]} v{'.'.join(map(str, version))}"
    proven, oldest = minor(versions.KUBERNETES_MINOR), minor(versions.KUBERNETES_OLDEST_MINOR)
    supported = f"the stack supports {versions.KUBERNETES_OLDEST_MINOR} to {versions.KUBERNETES_MINOR}"
    upgrade = f"upgrade to {versions.KUBERNETES_MINOR} (k3s: INSTALL_K3S_CHANNEL=v{versions.KUBERNETES_MINOR})"
    if version[:2] == proven:
        return passed(f"{shown}: the release the stack is proven on")
    if version[:2] < oldest:
        return failed(f"{shown}: {supported}", upgrade)
    if version[:2] < proven:
        return warned(f"{shown}: supported, but the stack is proven on {versions.KUBERNETES_MINOR}", upgrade)
    return warned(f"{shown}: newer than {versions.KUBERNETES_MINOR}, the release the stack is proven on",
                  "run immich-conformance check-stack after updating the project, or stay on "
                  f"{versions.KUBERNETES_MINOR}")


def kernel_feature(node: Node, module: str, config: str, release: str, kernel_config: str | None) -> str | None:
    """How the kernel has ``module`` (loaded, built in, loadable), or None when nothing says it has it."""
    modules = node.read("/proc/modules") or ""
    if any(line.split(" ", 1)[0] == module for line in modules.splitlines()):
        return "loaded"
    if node.is_dir(f"/sys/module/{module}"):
        return "built in"
    builtin = node.read(f"/lib/modules/{release}/modules.builtin") or ""
    if re.search(rf"/{module}\.ko\b", builtin):
        return "built in"
    dep = node.read(f"/lib/modules/{release}/modules.dep") or ""
    if re.search(rf"/{module}\.ko(\.[a-z]+)?:", dep):
        return "loadable"
    if kernel_config is not None:
        setting = re.search(rf"^{config}=([ym])$", kernel_config, re.MULTILINE)
        if setting:
            return "built in" if setting.group(1) == "y" else "loadable"
    if module == "xt_set" and "set" in (node.read("/proc/net/ip_tables_matches") or "").split():
        return "built in"
    return None


def kernel_netpol(node: Node, s: DoctorSettings) -> Outcome:
    release = (node.read("/proc/sys/kernel/osrelease") or "").strip()
    kernel_config = node.read_gzip("/proc/config.gz") or node.read(f"/boot/config-{release}")
    can_tell = kernel_config is not None or node.exists(f"/lib/modules/{release}/modules.dep")
    found = {m: kernel_feature(node, m, c, release, kernel_config) for m, c in KERNEL_FEATURES.items()}
    missing = [m for m, how in found.items() if how is None]
    shown = ", ".join(f"{m} {how}" for m, how in found.items() if how)
    if not missing:
        return passed(f"kernel {release}: {shown}")
    fix = (f"install the kernel's extra modules (Ubuntu: apt install linux-modules-extra-{release or '$(uname -r)'}) "
           f"and load them: modprobe {' '.join(missing)}")
    if not can_tell:
        return warned(f"kernel {release}: cannot tell whether it has {', '.join(missing)} (no /proc/config.gz, "
                      f"/boot/config-{release} nor /lib/modules/{release})", fix)
    return failed(f"kernel {release} has no {', '.join(missing)}: k3s's NetworkPolicy controller cannot enforce the "
                  "stack's policies", fix)


def listening_ports(node: Node) -> set[int]:
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in (node.read(table) or "").splitlines()[1:]:
            fields = line.split()
            if len(fields) > 3 and fields[3] == TCP_LISTEN:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def services(node: Node, s: DoctorSettings) -> tuple[list[dict], str]:
    """The cluster's Services and how they were listed ("" when the cluster could not be asked)."""
    if s.kubeconfig:
        kubectl = node.which("kubectl")
        if kubectl is None:
            return [], "kubectl is not on the node's PATH"
        done = node.run("%s --kubeconfig %s get services --all-namespaces -o json --request-timeout=20s", kubectl,
                        s.kubeconfig)
    else:
        k3s = node.which(*K3S_PATHS)
        if k3s is None:
            return [], ""
        done = node.run("%s kubectl get services --all-namespaces -o json --request-timeout=20s", k3s)
    if done.rc != 0:
        return [], f"listing the cluster's Services failed: {(done.stderr or done.stdout).strip()[:160]}"
    return json.loads(done.stdout).get("items", []), "listed"


def node_port(node: Node, s: DoctorSettings) -> Outcome:
    port = s.node_port
    if port is None:
        return passed(f"overlays/{s.overlay} fixes no node port for {s.service}")
    change = (f"set lanNodePort to another port (30000-32767) in stack/overlays/{s.overlay}/settings.yaml")
    if port in listening_ports(node):
        return failed(f"a process on the node listens on port {port}, the stack's LAN NodePort",
                      f"see which: ss -ltnp 'sport = :{port}'; stop it, or {change}")
    items, how = services(node, s)
    for svc in items:
        meta = svc.get("metadata") or {}
        for entry in (svc.get("spec") or {}).get("ports") or []:
            if entry.get("nodePort") != port:
                continue
            if (meta.get("namespace"), meta.get("name")) == (s.namespace, s.service):
                return passed(f"port {port} is held by the stack's own Service {s.namespace}/{s.service}")
            return failed(f"port {port} is held by Service {meta.get('namespace')}/{meta.get('name')}",
                          f"free it (kubectl -n {meta.get('namespace')} edit service {meta.get('name')}), or {change}")
    if how and how != "listed":
        return warned(f"no process listens on port {port}; {how}", "pass --kubeconfig with a working kubeconfig")
    seen = "no Service holds it" if how == "listed" else "the cluster's Services were not listed (no k3s here)"
    return passed(f"port {port} is free: no process listens on it, {seen}")


CHECKS = [
    Check("cpu-x86-64-v2", GROUP, cpu_flags),
    Check("memory", GROUP, memory),
    Check("kubernetes-version", GROUP, kubernetes_version),
    Check("kernel-networkpolicy", GROUP, kernel_netpol),
    Check("lan-node-port", GROUP, node_port),
]
