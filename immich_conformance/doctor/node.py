"""The node as the checks see it: a pytest-testinfra host (``local://``, ``ssh://user@node``...) whose files are
read under ``root`` ("/" on a real node; a prepared folder in tests). Every fact comes from a file under the root
or from a command run on the host, so that a fake root can stand in for every part of a node."""

from __future__ import annotations

import os
import posixpath
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import testinfra

from .. import run_folders

NETWORK_FILESYSTEMS = frozenset({"nfs", "nfs4", "cifs", "smb3", "smbfs", "glusterfs", "ceph", "9p", "fuse.sshfs",
                                 "fuse.glusterfs", "fuse.rclone", "fuse.ceph-fuse", "afs", "lustre", "beegfs"})
SSH_PERSIST_SECONDS = 10


class NodeError(RuntimeError):
    """The node cannot be reached or read; the message says how to fix it."""


@dataclass(frozen=True)
class Mount:
    device: str
    point: str
    fstype: str
    options: tuple[str, ...]

    @property
    def network(self) -> bool:
        return self.fstype in NETWORK_FILESYSTEMS or self.fstype.startswith(("nfs", "cifs", "smb"))


@dataclass(frozen=True)
class PathStat:
    uid: int
    gid: int
    mode: int
    kind: str  # "directory", "regular file", ... as stat(1) prints it


@dataclass(frozen=True)
class Space:
    available: int
    total: int
    path: str  # where it was measured: the folder asked for, or its nearest existing parent


def unescape_mount_field(field: str) -> str:
    """/proc/mounts and fstab write a space as \\040, a tab as \\011 and so on."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1:i + 4].isdigit() and len(field[i + 1:i + 4]) == 3:
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mount_table(text: str) -> list[Mount]:
    """Lines of /proc/mounts or /etc/fstab: device, mount point, type, options (comments and blanks skipped)."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[0].startswith("#") or fields[0] == "rootfs":
            continue
        mounts.append(Mount(unescape_mount_field(fields[0]), normalize(unescape_mount_field(fields[1])), fields[2],
                            tuple(fields[3].split(","))))
    return mounts


def normalize(path: str) -> str:
    return posixpath.normpath(path) if path.startswith("/") else path


def under(path: str, folder: str) -> bool:
    """``path`` is ``folder`` or inside it."""
    path, folder = normalize(path), normalize(folder)
    return folder == "/" or path == folder or path.startswith(folder.rstrip("/") + "/")


def covering_mount(mounts: list[Mount], path: str) -> Mount | None:
    """The mount a path is on: the deepest mount point above it, the last mounted when several share it."""
    best: Mount | None = None
    for mount in mounts:
        if under(path, mount.point) and (best is None or len(mount.point) >= len(best.point)):
            best = mount
    return best


class Node:
    """One node: ``host`` is a testinfra host spec; ``root`` prefixes every node path that is read."""

    def __init__(self, host: str = "local://", root: str = "/", **backend: Any) -> None:
        self.spec = host
        # Given, resolves a name for the DNS check instead of the node's resolver (tests never leave the machine).
        self.resolver: Callable[[str], list[str]] | None = None
        self.root = normalize(root) if root else "/"
        options = {k: v for k, v in backend.items() if v is not None}
        self._control: str | None = None
        if host.startswith("ssh://"):
            # One SSH connection for every command (testinfra runs one ssh per command otherwise).
            self._control = str(run_folders.fresh("immich-doctor-ssh-"))
            options.update(controlpath=posixpath.join(self._control, "master"), controlpersist=SSH_PERSIST_SECONDS)
        try:
            self.host = testinfra.get_host(host, **options)
        except RuntimeError as exc:
            self.close()
            raise NodeError(f"--host {host}: {exc}") from None

    def close(self) -> None:
        """Stop the shared SSH connection, if one was opened."""
        if self._control is None:
            return
        socket = posixpath.join(self._control, "master")
        if os.path.exists(socket):
            subprocess.run(["ssh", "-o", f"ControlPath={socket}", "-O", "exit", "node"], capture_output=True,
                           timeout=10, check=False)
        shutil.rmtree(self._control, ignore_errors=True)
        self._control = None

    @property
    def fake_root(self) -> bool:
        return self.root != "/"

    def at(self, path: str) -> str:
        """Where a node path is read through the host (under the fake root, if any)."""
        return path if not self.fake_root else self.root + normalize(path)

    def run(self, command: str, *args: str) -> Any:
        try:
            return self.host.run(command, *args)
        except Exception as exc:  # the backends raise their own types (ssh's exit status 255 as a RuntimeError...)
            detail = getattr(exc.args[0], "stderr", None) if exc.args else None
            raise NodeError(f"cannot reach {self.spec}: {(detail or str(exc)).strip()[:300]}") from None

    def read(self, path: str) -> str | None:
        """A node file's text, or None when it is not there or not readable."""
        done = self.run("cat -- %s", self.at(path))
        return done.stdout if done.rc == 0 else None

    def read_gzip(self, path: str) -> str | None:
        done = self.run("gzip -dc -- %s", self.at(path))
        return done.stdout if done.rc == 0 else None

    def exists(self, path: str) -> bool:
        return self.run("test -e %s", self.at(path)).rc == 0

    def is_dir(self, path: str) -> bool:
        return self.run("test -d %s", self.at(path)).rc == 0

    def listdir(self, path: str) -> list[str] | None:
        done = self.run("ls -1 -A -- %s", self.at(path))
        return done.stdout.splitlines() if done.rc == 0 else None

    def glob(self, folder: str, suffix: str) -> list[str]:
        """Node paths of the entries of ``folder`` whose names end with ``suffix`` (none when it is missing)."""
        return [posixpath.join(folder, name) for name in self.listdir(folder) or [] if name.endswith(suffix)]

    def stat(self, path: str) -> PathStat | None:
        done = self.run("stat -c '%%u %%g %%a %%F' -- %s", self.at(path))
        if done.rc != 0:
            return None
        uid, gid, mode, kind = done.stdout.strip().split(" ", 3)
        return PathStat(int(uid), int(gid), int(mode, 8), kind)

    def space(self, path: str) -> Space | None:
        """Free space (for an unprivileged writer) and size of the filesystem holding the nearest existing folder."""
        existing = normalize(path)
        while existing != "/" and not self.exists(existing):
            existing = posixpath.dirname(existing)
        done = self.run("stat -f -c '%%a %%b %%S' -- %s", self.at(existing))
        if done.rc != 0:
            return None
        available, blocks, size = (int(v) for v in done.stdout.split())
        return Space(available * size, blocks * size, existing)

    def which(self, *names: str) -> str | None:
        """The first of ``names`` found: a path (under the fake root) or a command on the host's PATH."""
        for name in names:
            if name.startswith("/"):
                if self.run("test -x %s", self.at(name)).rc == 0:
                    return self.at(name)
            elif not self.fake_root:
                done = self.run("command -v %s", name)
                if done.rc == 0 and done.stdout.strip():
                    return done.stdout.strip()
        return None

    @cached_property
    def mounts(self) -> list[Mount]:
        text = self.read("/proc/mounts")
        if text is None:
            raise NodeError(f"{self.spec}: cannot read {self.at('/proc/mounts')} (the mount table)")
        return parse_mount_table(text)

    def mount_of(self, path: str) -> Mount | None:
        return covering_mount(self.mounts, path)

    @cached_property
    def fstab(self) -> list[Mount]:
        return parse_mount_table(self.read("/etc/fstab") or "")

    @cached_property
    def addresses(self) -> set[str]:
        """The node's own IP addresses (the kernel's local routes, IPv4 and IPv6), loopback included."""
        found: set[str] = set()
        last = ""
        for line in (self.read("/proc/net/fib_trie") or "").splitlines():
            text = line.strip()
            if text.startswith(("|--", "+--")):
                last = text[3:].strip().split("/")[0]
            elif text.startswith("/32 host LOCAL") and last:
                found.add(last)
        import ipaddress

        for line in (self.read("/proc/net/if_inet6") or "").splitlines():
            raw = line.split()[0] if line.split() else ""
            if len(raw) == 32:
                found.add(str(ipaddress.IPv6Address(bytes.fromhex(raw))))
        return found
