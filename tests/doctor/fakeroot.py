"""A prepared fake root standing for a healthy node (the NAS on NFS, Postgres on the internal drive, k3s ordered after
the mount...), which each test breaks in one place; and the settings the checks read, as an overlay would give them."""

from __future__ import annotations

import gzip
import os
from dataclasses import replace
from pathlib import Path

from immich_conformance.doctor.checks import CHECKS
from immich_conformance.doctor.node import Node
from immich_conformance.doctor.settings import DoctorSettings, GiB, Limits
from immich_conformance.doctor.verdicts import Outcome

NAS = "/mnt/nas/immich"
POSTGRES = "/mnt/internal_drive/config/immich/postgres"
MODELS = "/mnt/internal_drive/config/immich/model-cache"
NODE_IP = "192.168.1.20"
HOSTNAME = "photos.familie-muster.net"
RELEASE = "6.8.0-45-generic"
V2_AND_AVX2 = "fpu vme de pse tsc msr pae cx8 sse sse2 pni ssse3 cx16 sse4_1 sse4_2 popcnt lahf_lm avx avx2"

MOUNTS = """\
sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
/dev/sda2 / ext4 rw,relatime 0 0
/dev/sdb1 /mnt/internal_drive ext4 rw,relatime 0 0
nas.local:/volume1/photos /mnt/nas nfs4 rw,relatime,vers=4.2,hard,proto=tcp 0 0
"""
FSTAB = """\
# <file system> <mount point> <type> <options> <dump> <pass>
UUID=1111-2222 / ext4 errors=remount-ro 0 1
UUID=3333-4444 /mnt/internal_drive ext4 defaults 0 2
nas.local:/volume1/photos /mnt/nas nfs4 defaults,_netdev 0 0
"""
# As k3s's install script writes it.
K3S_UNIT = """\
[Unit]
Description=Lightweight Kubernetes
Documentation=https://k3s.io
Wants=network-online.target
After=network-online.target

[Install]
WantedBy=multi-user.target

[Service]
Type=notify
ExecStart=/usr/local/bin/k3s \\
    server \\
"""
TCP_HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
FIB_TRIE = f"""\
Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 127.0.0.1
        /32 host LOCAL
     |-- {NODE_IP}
        /32 host LOCAL
     |-- 192.168.1.255
        /32 link BROADCAST
"""


def write(path: Path, text: str, mode: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if mode is not None:
        path.chmod(mode)
    return path


class FakeRoot:
    """A folder laid out as a node's /: what the checks read, healthy until a test changes it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.services: list[dict] = []
        write(self.p("/proc/mounts"), MOUNTS)
        write(self.p("/etc/fstab"), FSTAB)
        write(self.p("/etc/systemd/system/k3s.service"), K3S_UNIT)
        self.drop_in(f"[Unit]\nRequiresMountsFor={NAS}\n")
        self.cpu(V2_AND_AVX2)
        self.memory(16 * GiB)
        self.k3s("v1.37.2+k3s1")
        write(self.p("/proc/sys/kernel/osrelease"), RELEASE + "\n")
        write(self.p("/proc/modules"), "nf_conntrack 184320 3 xt_conntrack, Live 0x0000000000000000\n")
        self.modules_dep("kernel/net/netfilter/ipset/ip_set.ko.zst: kernel/net/netfilter/nfnetlink.ko.zst\n"
                         "kernel/net/netfilter/xt_set.ko.zst: kernel/net/netfilter/ipset/ip_set.ko.zst\n")
        self.listening(22)
        write(self.p("/proc/net/tcp6"), TCP_HEADER)
        write(self.p("/proc/net/fib_trie"), FIB_TRIE)
        write(self.p("/proc/net/if_inet6"), "00000000000000000000000000000001 01 80 10 80       lo\n")
        self.hosts(f"127.0.0.1 localhost\n{NODE_IP} {HOSTNAME} photos\n")
        for media in ("upload", "library", "thumbs"):
            write(self.p(f"{NAS}/{media}/.immich"), "")
        self.p(POSTGRES).mkdir(parents=True)
        os.chown(self.p(POSTGRES), 999, 999)
        self.p(POSTGRES).chmod(0o700)
        self.p(MODELS).mkdir(parents=True)

    def p(self, node_path: str) -> Path:
        return self.root / node_path.lstrip("/")

    def mounts(self, text: str) -> None:
        write(self.p("/proc/mounts"), text)

    def replace_in(self, node_path: str, old: str, new: str) -> None:
        text = self.p(node_path).read_text()
        assert old in text, f"{old!r} not in {node_path}"
        write(self.p(node_path), text.replace(old, new))

    def drop_in(self, text: str, unit: str = "k3s.service") -> Path:
        return write(self.p(f"/etc/systemd/system/{unit}.d/immich-nas.conf"), text)

    def cpu(self, flags: str, field: str = "flags") -> None:
        write(self.p("/proc/cpuinfo"), f"processor\t: 0\nmodel name\t: Test CPU\n{field}\t\t: {flags}\n\n")

    def memory(self, total: int) -> None:
        write(self.p("/proc/meminfo"), f"MemTotal:       {total // 1024} kB\nMemFree:        1024 kB\n")

    def k3s(self, version: str) -> None:
        services = self.p("/var/lib/fake-k3s/services.json")
        write(services, '{"items": []}')
        write(self.p("/usr/local/bin/k3s"), f"""#!/bin/sh
if [ "$1" = --version ]; then echo "k3s version {version} (abcdef12)"; echo "go version go1.25.1"; exit 0; fi
if [ "$1" = kubectl ]; then cat {services}; exit 0; fi
exit 1
""", 0o755)

    def set_services(self, items: list[dict]) -> None:
        import json

        write(self.p("/var/lib/fake-k3s/services.json"), json.dumps({"items": items}))

    def modules_dep(self, text: str) -> None:
        write(self.p(f"/lib/modules/{RELEASE}/modules.dep"), text)

    def kernel_config(self, text: str) -> None:
        path = self.p("/proc/config.gz")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(text.encode()))

    def listening(self, *ports: int) -> None:
        lines = [f"   {i}: 00000000:{port:04X} 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 "
                 f"{1000 + i} 1 0000000000000000 100 0 0 10 0" for i, port in enumerate(ports)]
        write(self.p("/proc/net/tcp"), TCP_HEADER + "\n".join(lines) + "\n")

    def hosts(self, text: str) -> None:
        write(self.p("/etc/hosts"), text)


def settings(**changes: object) -> DoctorSettings:
    base = DoctorSettings(overlay="k3s", nas_path=NAS, postgres_path=POSTGRES, models_path=MODELS, node_port=30283,
                          namespace="immich", public_hostname=HOSTNAME, postgres_uid=999,
                          memory_requests=2016 * 1024 ** 2, limits=Limits(0, 0, 0, 0, 0, 0, GiB))
    return replace(base, **changes)  # type: ignore[arg-type]


def run_check(check_id: str, root: FakeRoot | str, s: DoctorSettings | None = None,
              node: Node | None = None) -> Outcome:
    check = next(c for c in CHECKS if c.id == check_id)
    if node is None:
        node = Node("local://", str(root.root) if isinstance(root, FakeRoot) else root)
    return check.function(node, s or settings())
