"""The mount checks against real mounts made by the test (root): a loop-mounted ext4 and a FUSE filesystem (fuse2fs)
stand for the share (this kernel has no NFS: the network type is tested through the fake mount table), a tmpfs for a
volatile database folder. The
node is this machine itself (root /), the settings point into the test's folder."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from immich_conformance.doctor.checks.node_facts import listening_ports
from immich_conformance.doctor.node import Node
from immich_conformance.doctor.settings import Limits
from immich_conformance.doctor.verdicts import Verdict

from .fakeroot import run_check, settings


def sh(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)


def mount_or_skip(*argv: str) -> None:
    done = sh("mount", *argv)
    if done.returncode != 0:
        reason = f"mount {' '.join(argv)} is not permitted here: {done.stderr.strip()}"
        print(reason)
        pytest.skip(reason)


@pytest.fixture
def share(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB ext4 image loop-mounted at tmp/mnt/nas, unmounted afterwards."""
    image, point = tmp_path / "nas.img", tmp_path / "mnt" / "nas"
    point.mkdir(parents=True)
    with image.open("wb") as f:
        f.truncate(16 * 1024 ** 2)
    made = sh("mkfs.ext4", "-q", "-F", str(image))
    if made.returncode != 0:
        pytest.skip(f"mkfs.ext4 is not usable here: {made.stderr.strip()}")
    mount_or_skip("-o", "loop", str(image), str(point))
    try:
        yield point
    finally:
        if sh("mountpoint", "-q", str(point)).returncode == 0:
            sh("umount", str(point))


def test_a_loop_mounted_share_is_its_own_mount_of_the_declared_type(share: Path) -> None:
    (share / "immich").mkdir()
    s = settings(nas_path=str(share / "immich"))
    for check in ("nas-library-folder", "nas-own-mount", "nas-read-write", "nas-immich-markers"):
        outcome = run_check(check, "/", s)
        assert outcome.verdict is Verdict.PASS, (check, outcome)
    outcome = run_check("nas-filesystem-type", "/", s)
    assert outcome.verdict is Verdict.FAIL and f"{share} is ext4 (/dev/loop" in outcome.found
    assert run_check("nas-filesystem-type", "/", settings(nas_path=str(share / "immich"), nas_fstypes=("ext4",))) \
        .verdict is Verdict.PASS


def test_a_small_share_fails_free_space_with_the_default_limits(share: Path) -> None:
    (share / "immich").mkdir()
    outcome = run_check("nas-free-space", "/", settings(nas_path=str(share / "immich"), limits=Limits()))
    assert outcome.verdict is Verdict.FAIL and "MiB free of" in outcome.found


def test_a_share_remounted_read_only_fails(share: Path) -> None:
    (share / "immich").mkdir()
    mount_or_skip("-o", "remount,ro", str(share))
    outcome = run_check("nas-read-write", "/", settings(nas_path=str(share / "immich")))
    assert outcome.verdict is Verdict.FAIL and "read-only" in outcome.found


def test_an_unmounted_share_leaves_no_library_folder_and_no_mount(share: Path) -> None:
    (share / "immich").mkdir()
    s = settings(nas_path=str(share / "immich"))
    assert sh("umount", str(share)).returncode == 0
    assert run_check("nas-library-folder", "/", s).verdict is Verdict.FAIL
    own = run_check("nas-own-mount", "/", s)
    assert own.verdict is Verdict.FAIL


@pytest.fixture
def fuse_share(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB ext4 image mounted through FUSE (fuse2fs) at tmp/mnt/nas, unmounted afterwards."""
    if shutil.which("fuse2fs") is None or not Path("/dev/fuse").exists():
        pytest.skip("needs fuse2fs and /dev/fuse (setup.sh installs fuse2fs)")
    image, point = tmp_path / "nas.img", tmp_path / "mnt" / "nas"
    point.mkdir(parents=True)
    with image.open("wb") as f:
        f.truncate(16 * 1024 ** 2)
    sh("mkfs.ext4", "-q", "-F", str(image))
    done = sh("fuse2fs", str(image), str(point), "-o", "fakeroot")
    if done.returncode != 0:
        reason = f"fuse2fs cannot mount here: {(done.stderr or done.stdout).strip()}"
        print(reason)
        pytest.skip(reason)
    try:
        yield point
    finally:
        if sh("mountpoint", "-q", str(point)).returncode == 0:
            sh("umount", str(point))


def test_a_fuse_mounted_share_is_its_own_mount_of_a_type_to_declare(fuse_share: Path) -> None:
    (fuse_share / "immich").mkdir()
    s = settings(nas_path=str(fuse_share / "immich"))
    assert run_check("nas-own-mount", "/", s).verdict is Verdict.PASS
    assert run_check("nas-library-folder", "/", s).verdict is Verdict.PASS
    outcome = run_check("nas-filesystem-type", "/", s)
    fstype = outcome.found.split(" is ", 1)[1].split(" ", 1)[0]
    assert outcome.verdict is Verdict.WARN and fstype.startswith("fuse"), outcome
    assert outcome.fix == f"if it is the NAS, say so: immich-conformance doctor --nas-fstype {fstype}"
    assert run_check("nas-filesystem-type", "/", settings(nas_path=s.nas_path, nas_fstypes=(fstype,))).verdict \
        is Verdict.PASS


def test_postgres_on_a_real_tmpfs_fails(tmp_path: Path) -> None:
    folder = tmp_path / "postgres"
    folder.mkdir()
    mount_or_skip("-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder))
    try:
        outcome = run_check("postgres-local-filesystem", "/", settings(postgres_path=str(folder)))
        assert outcome.verdict is Verdict.FAIL and "tmpfs" in outcome.found
    finally:
        sh("umount", str(folder))


def test_a_real_listener_on_the_node_port_fails(tmp_path: Path) -> None:
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert port in listening_ports(Node("local://", "/"))
        outcome = run_check("lan-node-port", "/", settings(node_port=port, kubeconfig=None))
        assert outcome.verdict is Verdict.FAIL and f"port {port}" in outcome.found
