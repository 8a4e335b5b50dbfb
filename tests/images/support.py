"""Helpers of the image tests: build prerequisites, a writable view of a cached root filesystem, chroot processes."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from immich_conformance.images.rootfs import CHROOT_PATH


def require_build_prerequisites() -> None:
    """Skip (not root) or fail (root, something missing) with the reason; CI runs as root, so builds run there."""
    if os.geteuid() != 0:
        pytest.skip("building images needs root (debootstrap and chroot); CI runs these tests as root")
    if not (shutil.which("debootstrap") or Path("/usr/sbin/debootstrap").exists()):
        pytest.fail("debootstrap is missing: apt-get install debootstrap (setup.sh should install it)")


@contextlib.contextmanager
def writable_view(rootfs: Path, scratch: Path) -> Iterator[Path]:
    """An overlay mount of ``rootfs`` whose writes land in ``scratch``: the cached tree is never changed."""
    upper, work, merged = scratch / "upper", scratch / "work", scratch / "merged"
    for folder in (upper, work, merged):
        folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={rootfs},upperdir={upper},workdir={work}",
                    str(merged)], check=True, capture_output=True, text=True)
    try:
        yield merged
    finally:
        done = subprocess.run(["umount", str(merged)], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            subprocess.run(["umount", "-l", str(merged)], capture_output=True, text=True, check=False)


def chroot_argv(root: Path, argv: Sequence[str], env: Mapping[str, str] | None = None) -> list[str]:
    """``argv`` run in ``root`` with a clean environment (``env`` added to PATH and LANG)."""
    assignments = [f"{k}={v}" for k, v in {"PATH": CHROOT_PATH, "LANG": "C.UTF-8", **(env or {})}.items()]
    return ["chroot", str(root), "/usr/bin/env", "-i", *assignments, *argv]


def run_in(root: Path, argv: Sequence[str], env: Mapping[str, str] | None = None,
           timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(chroot_argv(root, argv, env), capture_output=True, text=True, timeout=timeout, check=False)


def resolve_inside(root: Path, path: str, limit: int = 40) -> Path:
    """``path`` of the image resolved as the image sees it (symbolic links followed inside ``root``)."""
    parts = [p for p in path.split("/") if p]
    resolved: list[str] = []
    while parts:
        if limit == 0:
            raise RuntimeError(f"too many symbolic links resolving {path} in {root}")
        part = parts.pop(0)
        if part == "..":
            resolved = resolved[:-1]
            continue
        candidate = root.joinpath(*resolved, part)
        if candidate.is_symlink():
            limit -= 1
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p and p != "."] + parts
            continue
        resolved.append(part)
    return root.joinpath(*resolved)
