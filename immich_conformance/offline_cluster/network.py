"""The node's network: its address on a veth pair, the Service route, the egress guard, and iptables clean-up."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from dataclasses import dataclass

from . import layout
from .errors import ClusterError

IPTABLES_TABLES = ("filter", "nat", "mangle", "raw")
# Chains made by the cluster: the kubelet's and kube-proxy's (KUBE-), the CNI plugins' (CNI-) and the guard's.
CLUSTER_CHAIN_PREFIXES = ("KUBE-", "CNI-", "IMMICH-")
GUARD_FORWARD = "IMMICH-EGRESS-FWD"  # mangle FORWARD: pod packets routed to the uplink are dropped
GUARD_OUTPUT = "IMMICH-EGRESS-OUT"  # filter OUTPUT: this machine's packets to pod or Service addresses via the uplink
GUARD_LEAK = "IMMICH-EGRESS-LEAK"  # mangle POSTROUTING: counts pod packets that would leave (must stay 0), drops them
NODEPORT_OUTPUT = "IMMICH-NODEPORT-OUT"  # filter OUTPUT: this machine's SYNs to a NodePort nothing serves yet
GUARD_CHAINS = (("mangle", GUARD_FORWARD), ("filter", GUARD_OUTPUT), ("mangle", GUARD_LEAK))
GUARD_JUMPS = (("mangle", "FORWARD", GUARD_FORWARD), ("filter", "OUTPUT", GUARD_OUTPUT),
               ("mangle", "POSTROUTING", GUARD_LEAK))


def run(argv: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise ClusterError(f"`{' '.join(argv)}` failed: {(result.stderr or result.stdout).strip()}")
    return result


def uplink() -> str | None:
    """The interface of the default route (the way off the machine), if there is one."""
    result = run(["ip", "-j", "route", "show", "default"], check=False)
    try:
        routes = json.loads(result.stdout or "[]")
    except json.JSONDecodeError:
        return None
    for route in routes:
        if route.get("dev"):
            return str(route["dev"])
    return None


def links_with_masters() -> list[str]:
    """Each network device, with the bridge it is a port of: ``veth1 master docker0``, or its name alone."""
    result = run(["ip", "-j", "link", "show"], check=False)
    try:
        return sorted(f"{link['ifname']} master {link['master']}" if link.get("master") else str(link["ifname"])
                      for link in json.loads(result.stdout or "[]"))
    except (json.JSONDecodeError, KeyError):
        return []


def link_exists(name: str) -> bool:
    return run(["ip", "link", "show", "dev", name], check=False).returncode == 0


# -- node address ---------------------------------------------------------------------------------------------------
def create_node_link() -> None:
    """The node's own address on one end of a veth pair (no dummy device on this kernel); the Service CIDR is
    routed there, so a ClusterIP that no rule catches goes nowhere rather than off the machine."""
    if not link_exists(layout.NODE_LINK):
        run(["ip", "link", "add", layout.NODE_LINK, "type", "veth", "peer", "name", layout.NODE_LINK_PEER])
    run(["ip", "addr", "replace", f"{layout.NODE_IP}/{layout.NODE_PREFIX}", "dev", layout.NODE_LINK])
    run(["ip", "link", "set", layout.NODE_LINK_PEER, "up"])
    run(["ip", "link", "set", layout.NODE_LINK, "up"])
    run(["ip", "route", "replace", layout.SERVICE_CIDR, "dev", layout.NODE_LINK])


def delete_links() -> None:
    for name in (layout.NODE_LINK, layout.BRIDGE):
        if link_exists(name):
            run(["ip", "link", "delete", name], check=False)


# -- iptables -------------------------------------------------------------------------------------------------------
def iptables_commands() -> list[str]:
    return [cmd for cmd in ("iptables", "ip6tables") if shutil.which(cmd)]


def iptables_rules(command: str, table: str) -> list[str]:
    result = run([command, "-w", "5", "-t", table, "-S"], check=False)
    return result.stdout.splitlines() if result.returncode == 0 else []


def _chain_of(rule: str) -> str | None:
    parts = rule.split()
    return parts[1] if len(parts) > 1 and parts[0] in ("-N", "-A", "-P") else None


def _target_of(rule: str) -> str | None:
    parts = shlex.split(rule)
    for flag in ("-j", "-g"):
        if flag in parts:
            i = parts.index(flag)
            return parts[i + 1] if i + 1 < len(parts) else None
    return None


def remove_cluster_chains(keep: set[str]) -> list[str]:
    """Delete every chain with a cluster prefix (and every rule jumping to one) that ``keep`` does not list.

    ``keep`` holds ``"<command> <table> <chain>"`` entries that existed before the cluster started.
    Returns what was removed.
    """
    removed: list[str] = []
    for command in iptables_commands():
        for table in IPTABLES_TABLES:
            rules = iptables_rules(command, table)
            chains = [c for c in (_chain_of(r) for r in rules if r.startswith("-N ")) if c]
            doomed = {c for c in chains if c.startswith(CLUSTER_CHAIN_PREFIXES)
                      and f"{command} {table} {c}" not in keep}
            if not doomed:
                continue
            for rule in rules:
                chain = _chain_of(rule)
                if rule.startswith("-A ") and chain not in doomed and _target_of(rule) in doomed:
                    spec = shlex.split(rule)[2:]
                    run([command, "-w", "5", "-t", table, "-D", str(chain), *spec], check=False)
            for chain in sorted(doomed):
                run([command, "-w", "5", "-t", table, "-F", chain], check=False)
            for chain in sorted(doomed):
                if run([command, "-w", "5", "-t", table, "-X", chain], check=False).returncode == 0:
                    removed.append(f"{command} {table} {chain}")
    return removed


def existing_cluster_chains() -> set[str]:
    found: set[str] = set()
    for command in iptables_commands():
        for table in IPTABLES_TABLES:
            for rule in iptables_rules(command, table):
                chain = _chain_of(rule)
                if rule.startswith("-N ") and chain and chain.startswith(CLUSTER_CHAIN_PREFIXES):
                    found.add(f"{command} {table} {chain}")
    return found


# -- ipsets (kube-router's policy controller) ----------------------------------------------------------------------
IPSET_PREFIXES = ("KUBE-", "inet6:KUBE-", "kube-router")


def ipset_names() -> list[str]:
    if shutil.which("ipset") is None:
        return []
    result = run(["ipset", "list", "-n"], check=False)
    return sorted(result.stdout.split()) if result.returncode == 0 else []


def remove_cluster_ipsets(keep: set[str]) -> list[str]:
    """Destroy the sets kube-router made (after the iptables rules that used them are gone); ``keep`` lists the sets
    that existed before the cluster started. Returns what could not be destroyed."""
    doomed = [name for name in ipset_names() if name.startswith(IPSET_PREFIXES) and name not in keep]
    for name in doomed:
        run(["ipset", "flush", name], check=False)
    return [name for name in doomed if run(["ipset", "destroy", name], check=False).returncode != 0]


# -- the egress guard -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GuardCounters:
    forward_dropped: int  # packets from pods dropped on their way out of the uplink
    output_dropped: int  # packets to pod or Service addresses dropped on their way out of the uplink
    leaked: int  # pod packets seen leaving through the uplink (must stay 0)


def install_guard(uplink_name: str) -> None:
    """DROP, in the mangle table (before any filter rule of kube-proxy's or kube-router's, which insert their own
    jumps at the top of filter FORWARD and OUTPUT and would ACCEPT first), on FORWARD from the pod CIDR out of the
    uplink; in filter OUTPUT, what goes to the pod and Service CIDRs out of it; and last, in mangle POSTROUTING, a
    counter of pod packets about to leave (must stay 0) followed by a DROP as a backstop."""
    if shutil.which("iptables") is None:
        raise ClusterError("iptables is missing, so the egress guard cannot be put in place: "
                           "run `python -m immich_conformance.offline_cluster.packages`")
    ipt = ["iptables", "-w", "5"]
    for table, chain in GUARD_CHAINS:
        if run([*ipt, "-t", table, "-N", chain], check=False).returncode != 0:
            run([*ipt, "-t", table, "-F", chain])
    comment = ["-m", "comment", "--comment", "immich-conformance egress guard"]
    run([*ipt, "-t", "mangle", "-A", GUARD_FORWARD, "-s", layout.POD_CIDR, "-o", uplink_name, *comment, "-j", "DROP"])
    run([*ipt, "-A", GUARD_OUTPUT, "-d", layout.POD_CIDR, "-o", uplink_name, *comment, "-j", "DROP"])
    run([*ipt, "-A", GUARD_OUTPUT, "-d", layout.SERVICE_CIDR, "-o", uplink_name, *comment, "-j", "DROP"])
    run([*ipt, "-t", "mangle", "-A", GUARD_LEAK, "-s", layout.POD_CIDR, "-o", uplink_name, *comment])
    run([*ipt, "-t", "mangle", "-A", GUARD_LEAK, "-s", layout.POD_CIDR, "-o", uplink_name, *comment, "-j", "DROP"])
    for cidr in (layout.POD_CIDR, layout.SERVICE_CIDR):
        run([*ipt, "-t", "mangle", "-A", GUARD_LEAK, "-d", cidr, "-o", uplink_name, *comment, "-j", "DROP"])
    ensure_guard_first()


def install_nodeport_refusal() -> None:
    """A connection this machine opens to a NodePort on the node address that kube-proxy does not (yet) forward is
    refused in filter OUTPUT, before conntrack keeps it.

    Without this, such a SYN (while a Service has no endpoint) is refused by kube-proxy's REJECT in filter INPUT, an
    ICMP error; conntrack kept the SYN on its way out, and the ICMP error does not close the entry: it stays
    un-NATed and UNREPLIED for the kernel's SYN_SENT timeout (120 s). A later connection that reuses the same source
    port matches it, skips kube-proxy's DNAT and is refused as well, long after the Service answers. A client on
    another machine never leaves such an entry (the REJECT in INPUT comes before conntrack confirms an incoming
    connection): this makes the node's own clients, the suite's, see a NodePort as the LAN sees it.
    """
    ipt = ["iptables", "-w", "5"]
    if run([*ipt, "-N", NODEPORT_OUTPUT], check=False).returncode != 0:
        run([*ipt, "-F", NODEPORT_OUTPUT])
    low, high = layout.NODE_PORTS
    run([*ipt, "-A", NODEPORT_OUTPUT, "-d", f"{layout.NODE_IP}/32", "-p", "tcp", "--syn", "--dport", f"{low}:{high}",
         "-m", "conntrack", "!", "--ctstate", "DNAT", "-m", "comment", "--comment",
         "immich-conformance: a NodePort kube-proxy does not forward", "-j", "REJECT", "--reject-with", "tcp-reset"])
    if run([*ipt, "-C", "OUTPUT", "-j", NODEPORT_OUTPUT], check=False).returncode != 0:
        run([*ipt, "-A", "OUTPUT", "-j", NODEPORT_OUTPUT])


def ensure_guard_first() -> None:
    """The guard's jumps are the first rules of mangle FORWARD, filter OUTPUT and mangle POSTROUTING (kube-proxy
    and kube-router insert their own jumps at the top when they start and resync; this puts the guard back in
    front)."""
    for table, builtin, chain in GUARD_JUMPS:
        jumps = [r for r in iptables_rules("iptables", table) if r.startswith(f"-A {builtin} ")]
        if jumps and jumps[0] == f"-A {builtin} -j {chain}" and jumps.count(jumps[0]) == 1:
            continue
        while run(["iptables", "-w", "5", "-t", table, "-D", builtin, "-j", chain], check=False).returncode == 0:
            pass
        run(["iptables", "-w", "5", "-t", table, "-I", builtin, "1", "-j", chain])


def guard_installed() -> bool:
    mangle, filter_rules = iptables_rules("iptables", "mangle"), iptables_rules("iptables", "filter")
    return (f"-A FORWARD -j {GUARD_FORWARD}" in mangle and f"-A OUTPUT -j {GUARD_OUTPUT}" in filter_rules
            and f"-A POSTROUTING -j {GUARD_LEAK}" in mangle
            and any(r.startswith(f"-A {GUARD_FORWARD} ") and r.endswith("-j DROP") for r in mangle))


def _packets(table: str, chain: str) -> list[int]:
    result = run(["iptables", "-w", "5", "-t", table, "-L", chain, "-n", "-v", "-x"], check=False)
    counts = []
    for line in result.stdout.splitlines()[2:]:
        fields = line.split()
        if fields and fields[0].isdigit():
            counts.append(int(fields[0]))
    return counts


def guard_counters() -> GuardCounters:
    leak_rules = _packets("mangle", GUARD_LEAK)
    return GuardCounters(forward_dropped=sum(_packets("mangle", GUARD_FORWARD)),
                         output_dropped=sum(_packets("filter", GUARD_OUTPUT)),
                         leaked=leak_rules[0] if leak_rules else 0)
