"""NAS folders for the fault catalogue: a plain folder, a bind mount (to remount read-only: root ignores chmod), or a
small ext4 filesystem on a loop device (to fill). What the machine cannot do is a skip that says why."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

LOOP_IMAGE_MB = 20


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=60)


def _need_root(what: str) -> None:
    if os.geteuid() != 0:
        pytest.skip(f"{what} needs root (mount); this test runs as uid {os.geteuid()}")


@contextlib.contextmanager
def bind_mounted(folder: Path) -> Iterator[Path]:
    """``folder`` bind-mounted on itself, so that it can be remounted read-only alone."""
    _need_root("a read-only NAS folder")
    folder.mkdir(parents=True, exist_ok=True)
    mounted = _run("mount", "--bind", str(folder), str(folder))
    if mounted.returncode != 0:
        pytest.skip(f"cannot bind-mount a folder here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        while _run("mountpoint", "-q", str(folder)).returncode == 0:  # the fault's remount stacks nothing, but be sure
            if _run("umount", str(folder)).returncode != 0:
                _run("umount", "-l", str(folder))


@contextlib.contextmanager
def loop_mounted(where: Path, megabytes: int = LOOP_IMAGE_MB) -> Iterator[Path]:
    """A fresh ext4 filesystem of ``megabytes`` on a loop device, mounted at ``where``/mnt; its ``nas`` folder."""
    _need_root("a small NAS filesystem")
    if shutil.which("mkfs.ext4") is None:
        pytest.skip("no mkfs.ext4 on this machine (e2fsprogs) to make a small NAS filesystem")
    if not Path("/dev/loop-control").exists():
        pytest.skip("no loop devices on this machine (/dev/loop-control is missing) to mount a small NAS filesystem")
    image, mount_point = where / "nas.ext4", where / "mnt"
    mount_point.mkdir(parents=True)
    with image.open("wb") as f:
        f.truncate(megabytes * 1024 * 1024)
    made = _run("mkfs.ext4", "-q", "-F", str(image))
    if made.returncode != 0:
        pytest.skip(f"mkfs.ext4 failed here: {made.stderr.strip()}")
    mounted = _run("mount", "-o", "loop", str(image), str(mount_point))
    if mounted.returncode != 0:
        pytest.skip(f"cannot loop-mount a filesystem image here: {mounted.stderr.strip()}")
    try:
        nas = mount_point / "nas"
        nas.mkdir()
        yield nas
    finally:
        if _run("umount", str(mount_point)).returncode != 0:
            _run("umount", "-l", str(mount_point))
        image.unlink(missing_ok=True)


@pytest.fixture
def nas_folder(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """The NAS folder the parametrised fault asks for (``Fault.nas``)."""
    kind = request.getfixturevalue("fault").nas
    if kind == "folder":
        yield tmp_path / "nas"
    elif kind == "bind":
        with bind_mounted(tmp_path / "nas") as nas:
            yield nas
    elif kind == "loop":
        with loop_mounted(tmp_path) as nas:
            yield nas
    else:
        raise ValueError(f"no NAS folder of kind {kind!r}")
