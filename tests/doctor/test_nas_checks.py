"""The NAS checks against a fake root: each passes on the prepared node and warns or fails once broken."""

from __future__ import annotations

import os
import shutil

import pytest

from immich_conformance.doctor.settings import Limits
from immich_conformance.doctor.verdicts import Verdict

from .fakeroot import MOUNTS, NAS, FakeRoot, run_check, settings

UNMOUNTED = MOUNTS.replace("nas.local:/volume1/photos /mnt/nas nfs4 rw,relatime,vers=4.2,hard,proto=tcp 0 0\n", "")


def test_every_nas_check_passes_on_a_prepared_node(fake: FakeRoot) -> None:
    for check in ("nas-library-folder", "nas-own-mount", "nas-filesystem-type", "nas-read-write",
                  "nas-immich-markers", "nas-free-space"):
        outcome = run_check(check, fake)
        assert outcome.verdict is Verdict.PASS, (check, outcome)


def test_a_missing_library_folder_fails_with_the_mkdir_to_run(fake: FakeRoot) -> None:
    shutil.rmtree(fake.p(NAS))
    outcome = run_check("nas-library-folder", fake)
    assert outcome.verdict is Verdict.FAIL
    assert "does not exist" in outcome.found and f"mkdir {NAS}" in outcome.fix


def test_the_mount_point_itself_as_library_fails(fake: FakeRoot) -> None:
    outcome = run_check("nas-library-folder", fake, settings(nas_path="/mnt/nas"))
    assert outcome.verdict is Verdict.FAIL
    assert "mount point itself" in outcome.found and "nasLibraryPath: /mnt/nas/immich" in outcome.fix


def test_a_share_that_did_not_mount_fails_own_mount_and_type(fake: FakeRoot) -> None:
    fake.mounts(UNMOUNTED)
    own = run_check("nas-own-mount", fake)
    assert own.verdict is Verdict.FAIL and "root filesystem" in own.found and "/mnt/nas" in own.fix
    assert run_check("nas-filesystem-type", fake).verdict is Verdict.FAIL


def test_a_bind_mount_of_the_root_disk_is_not_a_share(fake: FakeRoot) -> None:
    fake.mounts(UNMOUNTED + "/dev/sda2 /mnt/nas ext4 rw,relatime 0 0\n")
    outcome = run_check("nas-own-mount", fake)
    assert outcome.verdict is Verdict.FAIL and "root disk" in outcome.found


@pytest.mark.parametrize(("line", "declared", "verdict"), [
    ("//nas/photos /mnt/nas cifs rw,vers=3.1.1 0 0", (), Verdict.PASS),
    ("/dev/sdc1 /mnt/nas ext4 rw,relatime 0 0", ("ext4",), Verdict.PASS),
    ("mergerfs /mnt/nas fuse.mergerfs rw,relatime 0 0", (), Verdict.WARN),
    ("/dev/sdc1 /mnt/nas ext4 rw,relatime 0 0", (), Verdict.FAIL),
])
def test_the_share_type_is_a_network_filesystem_or_declared(fake: FakeRoot, line: str, declared: tuple[str, ...],
                                                             verdict: Verdict) -> None:
    fake.mounts(UNMOUNTED + line + "\n")
    outcome = run_check("nas-filesystem-type", fake, settings(nas_fstypes=declared))
    assert outcome.verdict is verdict, outcome
    if verdict is not Verdict.PASS:
        assert "--nas-fstype" in outcome.fix


@pytest.mark.parametrize(("options", "verdict"), [
    ("rw,relatime,vers=4.2,hard", Verdict.PASS),
    ("rw,relatime,vers=4.2,soft", Verdict.WARN),
    ("ro,relatime,vers=4.2,hard", Verdict.FAIL),
])
def test_the_share_is_mounted_read_write_and_hard(fake: FakeRoot, options: str, verdict: Verdict) -> None:
    fake.mounts(UNMOUNTED + f"nas.local:/volume1/photos /mnt/nas nfs4 {options} 0 0\n")
    outcome = run_check("nas-read-write", fake)
    assert outcome.verdict is verdict, outcome
    if verdict is Verdict.FAIL:
        assert "mount -o remount,rw /mnt/nas" in outcome.fix


def test_an_empty_library_passes_markers_before_the_first_start(fake: FakeRoot) -> None:
    shutil.rmtree(fake.p(NAS))
    fake.p(NAS).mkdir()
    outcome = run_check("nas-immich-markers", fake)
    assert outcome.verdict is Verdict.PASS and "empty" in outcome.found


def test_a_library_without_immich_folders_warns(fake: FakeRoot) -> None:
    shutil.rmtree(fake.p(NAS))
    (fake.p(NAS) / "Holidays 2019").mkdir(parents=True)
    assert run_check("nas-immich-markers", fake).verdict is Verdict.WARN


def test_an_immich_folder_that_lost_its_marker_fails(fake: FakeRoot) -> None:
    os.remove(fake.p(f"{NAS}/library/.immich"))
    outcome = run_check("nas-immich-markers", fake)
    assert outcome.verdict is Verdict.FAIL
    assert "library" in outcome.found and f"touch {NAS}/library/.immich" in outcome.fix


def test_free_space_on_the_share_passes_warns_and_fails_at_its_limits(fake: FakeRoot) -> None:
    available = os.statvfs(fake.p(NAS)).f_bavail * os.statvfs(fake.p(NAS)).f_frsize
    above = 2 * available + 1
    assert run_check("nas-free-space", fake, settings(limits=Limits(nas_warn=1, nas_fail=0))).verdict is Verdict.PASS
    warn = run_check("nas-free-space", fake, settings(limits=Limits(nas_warn=above, nas_fail=0)))
    assert warn.verdict is Verdict.WARN and "free of" in warn.found
    assert run_check("nas-free-space", fake, settings(limits=Limits(nas_warn=above, nas_fail=above))).verdict \
        is Verdict.FAIL


def test_free_space_of_a_missing_folder_names_where_it_was_measured(fake: FakeRoot) -> None:
    shutil.rmtree(fake.p(NAS))
    outcome = run_check("nas-free-space", fake)
    assert "the nearest existing folder above /mnt/nas/immich" in outcome.found
