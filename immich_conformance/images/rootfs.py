"""Root filesystems from Debian: ``debootstrap --variant=minbase``, packages installed with apt in a chroot.

Everything here runs as root (debootstrap and chroot need it) and mounts nothing: no /proc, no bind mount, so a
half-built tree can always be removed like any folder. Downloaded packages are kept in the build cache
(``debootstrap --cache-dir`` and a copy of apt's archives), so a rebuild downloads only what changed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
CHROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
COMMAND_TIMEOUT = 1800

# What no image needs at run time: documentation, manuals, translations, package lists and caches, logs.
SLIM_GLOBS = (
    "usr/share/doc/*", "usr/share/man/*", "usr/share/info/*", "usr/share/locale/*", "usr/share/lintian/*",
    "var/lib/apt/lists/*", "var/cache/apt/*.bin", "var/cache/apt/archives/*.deb", "var/cache/debconf/*-old",
    "var/lib/dpkg/*-old", "var/log/*.log", "var/log/apt/*", "tmp/*", "root/.cache",
)


class RootfsError(RuntimeError):
    """A root filesystem could not be made; the message says which step failed and why."""


def require_root(what: str) -> None:
    if os.geteuid() != 0:
        raise RootfsError(f"{what} needs root (debootstrap and chroot): run it as root, e.g. with sudo")


def require_debootstrap() -> str:
    found = shutil.which("debootstrap") or ("/usr/sbin/debootstrap" if Path("/usr/sbin/debootstrap").exists() else None)
    if not found:
        raise RootfsError("debootstrap is not installed: apt-get install debootstrap")
    return found


def _run(argv: Sequence[str], what: str, *, env: dict[str, str] | None = None) -> str:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, env=env, timeout=COMMAND_TIMEOUT,
                              check=False)
    except subprocess.TimeoutExpired:
        raise RootfsError(f"{what}: still running after {COMMAND_TIMEOUT} s, stopped") from None
    except OSError as exc:
        raise RootfsError(f"{what}: cannot run {argv[0]}: {exc.strerror or exc}") from None
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-25:])
        raise RootfsError(f"{what} failed (exit {done.returncode}):\n{tail}")
    return done.stdout


def debootstrap(target: Path, include: Sequence[str], cache_dir: Path) -> None:
    """``debootstrap --variant=minbase`` of Debian ``SUITE`` into ``target`` (which must not exist yet)."""
    require_root("debootstrap")
    tool = require_debootstrap()
    cache_dir.mkdir(parents=True, exist_ok=True)
    argv = [tool, "--variant=minbase", f"--cache-dir={cache_dir.resolve()}"]
    if include:
        argv.append(f"--include={','.join(include)}")
    _run([*argv, SUITE, str(target), MIRROR], f"debootstrap {SUITE} into {target}")


def chroot(rootfs: Path, argv: Sequence[str], what: str, *, env: dict[str, str] | None = None) -> str:
    """Run ``argv`` inside ``rootfs`` with a clean environment."""
    require_root("chroot")
    base_env = {"PATH": CHROOT_PATH, "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive", "HOME": "/root"}
    assignments = [f"{k}={v}" for k, v in {**base_env, **(env or {})}.items()]
    command = ["chroot", str(rootfs), "/usr/bin/env", "-i", *assignments, *argv]
    return _run(command, what)


def copy_tree(source: Path, target: Path) -> None:
    """A full copy (owners, modes, links, device nodes kept)."""
    _run(["cp", "-a", "--reflink=auto", str(source), str(target)], f"copying {source} to {target}")


def remove_tree(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def _with_resolver(rootfs: Path) -> Path:
    resolv = rootfs / "etc" / "resolv.conf"
    if resolv.is_symlink() or resolv.exists():
        resolv.unlink()
    shutil.copyfile("/etc/resolv.conf", resolv)
    return resolv


def _quiet_services(rootfs: Path) -> Path:
    """policy-rc.d that forbids starting services while packages are installed (nothing runs in the chroot)."""
    policy = rootfs / "usr" / "sbin" / "policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    return policy


def apt_update(rootfs: Path) -> None:
    resolv = _with_resolver(rootfs)
    try:
        chroot(rootfs, ["apt-get", "update", "-q"], f"apt-get update in {rootfs.name}")
    finally:
        resolv.unlink(missing_ok=True)
        resolv.write_text("")


def apt_install(rootfs: Path, packages: Sequence[str], deb_cache: Path) -> None:
    """apt-get install ``packages`` (no recommends) in ``rootfs``; .deb files come from and go to ``deb_cache``."""
    if not packages:
        return
    archives = rootfs / "var" / "cache" / "apt" / "archives"
    archives.mkdir(parents=True, exist_ok=True)
    deb_cache.mkdir(parents=True, exist_ok=True)
    for deb in deb_cache.glob("*.deb"):
        _link_or_copy(deb, archives / deb.name)
    resolv = _with_resolver(rootfs)
    policy = _quiet_services(rootfs)
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "-o", "Dpkg::Options::=--force-confold",
               *packages]
    try:
        if not any((rootfs / "var" / "lib" / "apt" / "lists").glob("*Packages*")):
            chroot(rootfs, ["apt-get", "update", "-q"], f"apt-get update in {rootfs.name}")
        try:
            chroot(rootfs, install, f"apt-get install {' '.join(packages)} in {rootfs.name}")
        except RootfsError:
            # Package lists kept from an earlier build may name versions the mirror no longer has.
            chroot(rootfs, ["apt-get", "update", "-q"], f"apt-get update in {rootfs.name}")
            chroot(rootfs, install, f"apt-get install {' '.join(packages)} in {rootfs.name}")
    finally:
        policy.unlink(missing_ok=True)
        resolv.unlink(missing_ok=True)
        resolv.write_text("")
    for deb in archives.glob("*.deb"):
        if not (deb_cache / deb.name).exists():
            _link_or_copy(deb, deb_cache / deb.name)
        deb.unlink()


def _link_or_copy(source: Path, target: Path) -> None:
    if target.exists():
        return
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def slim(rootfs: Path) -> None:
    """Remove what no image needs at run time (SLIM_GLOBS) and the builder's resolver file."""
    for pattern in SLIM_GLOBS:
        for path in rootfs.glob(pattern):
            remove_tree(path)
    resolv = rootfs / "etc" / "resolv.conf"
    if resolv.is_symlink() or resolv.exists():
        resolv.unlink()
    resolv.write_text("")


def install_file(rootfs: Path, inside: str, data: bytes, mode: int, owner: tuple[int, int] = (0, 0)) -> Path:
    """Write ``data`` at the absolute path ``inside`` of ``rootfs`` with ``mode`` and ``owner`` (uid, gid)."""
    if not inside.startswith("/"):
        raise ValueError(f"{inside!r} must be an absolute path inside the image")
    target = rootfs / inside.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink() or target.exists():
        target.unlink()
    target.write_bytes(data)
    os.chown(target, *owner)
    target.chmod(mode)
    return target


def make_dir(rootfs: Path, inside: str, mode: int, owner: tuple[int, int] = (0, 0)) -> Path:
    target = rootfs / inside.lstrip("/")
    target.mkdir(parents=True, exist_ok=True)
    os.chown(target, *owner)
    target.chmod(mode)
    return target


def symlink(rootfs: Path, inside: str, points_to: str) -> None:
    link = rootfs / inside.lstrip("/")
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(points_to)
