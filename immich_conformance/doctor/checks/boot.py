"""The NAS comes back after a reboot before Kubernetes starts: an /etc/fstab entry or an enabled systemd mount unit,
and k3s's unit (or k3s-agent's, or kubelet's) ordered after it (``RequiresMountsFor=`` or ``After=remote-fs.target``).
Units are read from their files (unit and drop-ins), so a fake root can hold them."""

from __future__ import annotations

import posixpath
import string

from ..node import Mount, Node, under
from ..settings import DoctorSettings
from ..verdicts import Outcome, failed, passed, warned
from .base import Check
from .nas import share_point

GROUP = "boot"
UNIT_DIRS = ("/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system", "/usr/lib/systemd/system",
             "/lib/systemd/system")
KUBERNETES_UNITS = ("k3s.service", "k3s-agent.service", "kubelet.service")
DROP_IN = "immich-nas.conf"
ORDERING_KEYS = ("After", "Requires", "RequiresMountsFor", "BindsTo", "Wants")


def mount_unit_name(path: str) -> str:
    """``systemd-escape --path --suffix=mount``."""
    trimmed = path.strip("/")
    if not trimmed:
        return "-.mount"
    allowed = set(string.ascii_letters + string.digits + ":_.")
    out = []
    for i, char in enumerate(trimmed):
        if char == "/":
            out.append("-")
        elif char in allowed and not (i == 0 and char == "."):
            out.append(char)
        else:
            out.append("".join(f"\\x{b:02x}" for b in char.encode()))
    return "".join(out) + ".mount"


def parse_unit_section(text: str, section: str, into: dict[str, list[str]]) -> None:
    """Add the values of ``section`` in unit file text to ``into`` (an empty assignment resets a list)."""
    current = ""
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
            continue
        if current != section or "=" not in line:
            continue
        key, value = (part.strip() for part in line.split("=", 1))
        if not value:
            into[key] = []
        else:
            into.setdefault(key, []).extend(value.split())


def unit_file(node: Node, name: str) -> str | None:
    return next((posixpath.join(d, name) for d in UNIT_DIRS if node.exists(posixpath.join(d, name))), None)


def unit_settings(node: Node, name: str, section: str = "Unit") -> tuple[str, dict[str, list[str]]] | None:
    """The unit's file and ``section`` as the unit and its drop-ins set it (drop-ins in name order)."""
    path = unit_file(node, name)
    if path is None:
        return None
    values: dict[str, list[str]] = {}
    parse_unit_section(node.read(path) or "", section, values)
    drop_ins = sorted((p for d in UNIT_DIRS for p in node.glob(posixpath.join(d, name + ".d"), ".conf")),
                      key=posixpath.basename)
    for drop_in in drop_ins:
        parse_unit_section(node.read(drop_in) or "", section, values)
    return path, values


def fstab_entry(node: Node, point: str, nas_path: str) -> Mount | None:
    exact = [m for m in node.fstab if m.point == point]
    if exact:
        return exact[-1]
    above = [m for m in node.fstab if m.point != "/" and under(nas_path, m.point)]
    return max(above, key=lambda m: len(m.point)) if above else None


def mount_units(node: Node, point: str) -> list[str]:
    """Names of the .mount/.automount units for ``point`` (by name or by Where=)."""
    wanted = mount_unit_name(point)
    found = []
    for folder in UNIT_DIRS:
        for path in node.glob(folder, ".mount") + node.glob(folder, ".automount"):
            name = posixpath.basename(path)
            where: dict[str, list[str]] = {}
            parse_unit_section(node.read(path) or "", "Mount" if name.endswith(".mount") else "Automount", where)
            if name.rsplit(".", 1)[0] == wanted.rsplit(".", 1)[0] or where.get("Where") == [point]:
                found.append(name)
    return found


def enabled(node: Node, unit: str) -> bool:
    for folder in ("/etc/systemd/system",):
        for wants in (node.listdir(folder) or []):
            if wants.endswith((".wants", ".requires")) and unit in (node.listdir(posixpath.join(folder, wants)) or []):
                return True
    return False


def fstab_line(node: Node, s: DoctorSettings, point: str) -> str:
    mount = node.mount_of(s.nas_path)
    if mount is not None and mount.point == point and mount.point != "/":
        return f"{mount.device} {point} {mount.fstype} defaults,_netdev 0 0"
    return f"nas.local:/volume1/photos {point} nfs defaults,_netdev 0 0"


def mount_at_boot(node: Node, s: DoctorSettings) -> Outcome:
    point = share_point(node, s)
    entry = fstab_entry(node, point, s.nas_path)
    if entry is not None:
        found = f"/etc/fstab mounts {entry.device} at {entry.point} ({entry.fstype}, {','.join(entry.options)})"
        if "noauto" in entry.options and "x-systemd.automount" not in entry.options:
            return warned(f"{found}: noauto, so not at boot",
                          f"remove noauto from the {entry.point} line of /etc/fstab (or add x-systemd.automount)")
        return passed(found)
    units = mount_units(node, point)
    if units:
        if any(enabled(node, unit) for unit in units):
            return passed(f"systemd unit {', '.join(units)} mounts {point} at boot")
        return warned(f"systemd unit {', '.join(units)} for {point} is not enabled (started at boot)",
                      f"systemctl enable {units[-1]}")
    return failed(f"neither /etc/fstab nor a systemd mount unit mounts {point}: after a reboot the share is missing",
                  f"add to /etc/fstab: {fstab_line(node, s, point)}")


def nas_is_remote(node: Node, s: DoctorSettings, point: str) -> bool:
    entry = fstab_entry(node, point, s.nas_path)
    mount = node.mount_of(s.nas_path)
    if entry is not None:
        return entry.network or "_netdev" in entry.options
    return mount is not None and mount.network


def drop_in(unit: str, s: DoctorSettings) -> str:
    folder = f"/etc/systemd/system/{unit}.d"
    return (f"mkdir -p {folder} && printf '[Unit]\\nRequiresMountsFor={s.nas_path}\\n' > {folder}/{DROP_IN} "
            "&& systemctl daemon-reload")


def kubernetes_after_mount(node: Node, s: DoctorSettings) -> Outcome:
    unit = next((name for name in KUBERNETES_UNITS if unit_file(node, name)), None)
    if unit is None:
        return warned(f"no {', '.join(KUBERNETES_UNITS)} unit in {', '.join(UNIT_DIRS[:2])} or /lib/systemd/system: "
                      "if Kubernetes starts at boot here, its start is not ordered after the NAS",
                      "order the unit that starts Kubernetes after the share, e.g. for k3s: "
                      f"{drop_in('k3s.service', s)}")
    path, values = unit_settings(node, unit) or ("", {})
    point = share_point(node, s)
    mount_unit = mount_unit_name(point)
    after = values.get("After", [])
    for wanted in values.get("RequiresMountsFor", []):
        if under(wanted, point):
            return passed(f"{unit} has RequiresMountsFor={wanted}")
    if mount_unit in after:
        return passed(f"{unit} has After={mount_unit}")
    remote = nas_is_remote(node, s, point)
    if remote and "remote-fs.target" in after:
        return passed(f"{unit} has After=remote-fs.target and {point} is a network mount")
    if not remote and fstab_entry(node, point, s.nas_path) is not None:
        return passed(f"{point} is a local mount in /etc/fstab: local-fs.target comes before every service")
    return failed(f"{unit} ({path}) is not ordered after the mount of {point} "
                  f"(After={' '.join(after) or '-'}): after a reboot k3s can start Immich before the share is there",
                  f"add the drop-in: {drop_in(unit, s)}")


CHECKS = [
    Check("boot-mount", GROUP, mount_at_boot),
    Check("boot-kubernetes-after-mount", GROUP, kubernetes_after_mount),
]
