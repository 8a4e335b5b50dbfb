"""Split-horizon DNS: on the LAN, Immich's public hostname resolves to this node (not to Cloudflare), so that phones
at home reach Immich directly. Resolved on the node with its resolver library (``getent ahosts``), or from the fake
root's /etc/hosts, or by a resolver a caller gives the node (``Node.resolver``)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from pathlib import Path

from ..node import Node, NodeError
from ..settings import DoctorSettings
from ..verdicts import Outcome, failed, passed, warned
from .base import Check

GROUP = "dns"
PLACEHOLDER_DOMAINS = ("example.com", "example.org", "example.net")


def hosts_file_lookup(text: str, name: str) -> list[str]:
    found = []
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) >= 2 and name.lower() in (f.lower() for f in fields[1:]):
            found.append(fields[0])
    return found


def hosts_file_resolver(path: Path) -> Callable[[str], list[str]]:
    """A resolver reading a hosts-format file on this machine (read once, now)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise NodeError(f"--hosts-file {path}: {exc.strerror}") from None
    return lambda name: hosts_file_lookup(text, name)


def resolve(node: Node, name: str) -> list[str]:
    """The addresses ``name`` resolves to on the node ([] when it does not)."""
    if node.resolver is not None:
        return node.resolver(name)
    if node.fake_root:
        return hosts_file_lookup(node.read("/etc/hosts") or "", name)
    done = node.run("getent ahosts %s", name)
    return sorted({line.split()[0] for line in done.stdout.splitlines() if line.split()}) if done.rc == 0 else []


def lan_addresses(addresses: set[str]) -> list[str]:
    usable = [ipaddress.ip_address(a) for a in addresses]
    return sorted(str(a) for a in usable if not (a.is_loopback or a.is_link_local))


def public_hostname(node: Node, s: DoctorSettings) -> Outcome:
    name = s.public_hostname
    where = f"stack/overlays/{s.overlay}/cloudflared.yaml"
    if not name:
        return warned(f"overlays/{s.overlay} names no public hostname", f"set Immich's public hostname in {where}")
    if name.endswith(PLACEHOLDER_DOMAINS):
        return warned(f"the public hostname is still the example {name}", f"set Immich's public hostname in {where}")
    own = lan_addresses(node.addresses)
    record = f"on the LAN's DNS (router, Pi-hole...) add a record {name} -> {own[0] if own else 'the node address'}"
    addresses = resolve(node, name)
    if not addresses:
        return warned(f"{name} does not resolve on the node: LAN clients go through the tunnel or not at all", record)
    mine = [a for a in addresses if a in own]
    if mine:
        return passed(f"{name} resolves to {', '.join(mine)}, this node")
    if all(ipaddress.ip_address(a).is_loopback for a in addresses):
        return warned(f"{name} resolves to {', '.join(addresses)} (loopback): right on the node only", record)
    return failed(f"{name} resolves to {', '.join(addresses)}, not this node ({', '.join(own) or 'no LAN address'}): "
                  "LAN clients go out through Cloudflare", record)


CHECKS = [Check("split-horizon-dns", GROUP, public_hostname)]
