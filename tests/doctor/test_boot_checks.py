"""Boot ordering against a fake root: the share in /etc/fstab or a systemd mount unit, and k3s's unit ordered after
it; when it is not, the drop-in to add is printed."""

from __future__ import annotations

import os

import pytest

from immich_conformance.doctor.checks.boot import mount_unit_name
from immich_conformance.doctor.verdicts import Verdict

from .fakeroot import NAS, FakeRoot, run_check

NAS_LINE = "nas.local:/volume1/photos /mnt/nas nfs4 defaults,_netdev 0 0\n"
MOUNT_UNIT = "[Unit]\nDescription=NAS\n\n[Mount]\nWhat=nas.local:/volume1/photos\nWhere=/mnt/nas\nType=nfs4\n"


def test_mount_unit_names_are_escaped_as_systemd_does() -> None:
    assert mount_unit_name("/mnt/nas") == "mnt-nas.mount"
    assert mount_unit_name("/mnt/my-nas/photos") == "mnt-my\\x2dnas-photos.mount"
    assert mount_unit_name("/") == "-.mount"


def test_the_share_in_fstab_passes(fake: FakeRoot) -> None:
    outcome = run_check("boot-mount", fake)
    assert outcome.verdict is Verdict.PASS and "/etc/fstab" in outcome.found


def test_a_noauto_fstab_entry_warns(fake: FakeRoot) -> None:
    fake.replace_in("/etc/fstab", "defaults,_netdev", "noauto,_netdev")
    outcome = run_check("boot-mount", fake)
    assert outcome.verdict is Verdict.WARN and "noauto" in outcome.fix


def test_an_enabled_mount_unit_passes_and_a_disabled_one_warns(fake: FakeRoot) -> None:
    fake.replace_in("/etc/fstab", NAS_LINE, "")
    unit = fake.p("/etc/systemd/system/mnt-nas.mount")
    unit.write_text(MOUNT_UNIT)
    outcome = run_check("boot-mount", fake)
    assert outcome.verdict is Verdict.WARN and outcome.fix == "systemctl enable mnt-nas.mount"
    wants = fake.p("/etc/systemd/system/remote-fs.target.wants")
    wants.mkdir(parents=True)
    (wants / "mnt-nas.mount").symlink_to(unit)
    assert run_check("boot-mount", fake).verdict is Verdict.PASS


def test_a_share_mounted_by_hand_only_fails_with_the_fstab_line(fake: FakeRoot) -> None:
    fake.replace_in("/etc/fstab", NAS_LINE, "")
    outcome = run_check("boot-mount", fake)
    assert outcome.verdict is Verdict.FAIL
    assert outcome.fix == "add to /etc/fstab: nas.local:/volume1/photos /mnt/nas nfs4 defaults,_netdev 0 0"


@pytest.mark.parametrize("drop_in", [
    f"[Unit]\nRequiresMountsFor={NAS}\n",
    "[Unit]\nRequiresMountsFor=/mnt/nas\n",
    "[Unit]\nAfter=remote-fs.target\n",
    "[Unit]\nAfter=network-online.target mnt-nas.mount\n",
])
def test_k3s_ordered_after_the_share_passes(fake: FakeRoot, drop_in: str) -> None:
    fake.drop_in(drop_in)
    assert run_check("boot-kubernetes-after-mount", fake).verdict is Verdict.PASS


def test_k3s_not_ordered_after_the_share_fails_and_prints_the_drop_in(fake: FakeRoot) -> None:
    os.remove(fake.drop_in(""))
    outcome = run_check("boot-kubernetes-after-mount", fake)
    assert outcome.verdict is Verdict.FAIL
    assert "After=network-online.target" in outcome.found
    assert outcome.fix == ("add the drop-in: mkdir -p /etc/systemd/system/k3s.service.d && printf '[Unit]\\n"
                           f"RequiresMountsFor={NAS}\\n' > /etc/systemd/system/k3s.service.d/immich-nas.conf && "
                           "systemctl daemon-reload")


def test_an_ordering_for_another_folder_or_reset_by_a_later_drop_in_fails(fake: FakeRoot) -> None:
    fake.drop_in("[Unit]\nRequiresMountsFor=/mnt/internal_drive\n")
    assert run_check("boot-kubernetes-after-mount", fake).verdict is Verdict.FAIL
    fake.drop_in("[Unit]\nAfter=remote-fs.target\n")
    (fake.p("/etc/systemd/system/k3s.service.d") / "zz-reset.conf").write_text("[Unit]\nAfter=\n")
    assert run_check("boot-kubernetes-after-mount", fake).verdict is Verdict.FAIL


def test_remote_fs_target_does_not_cover_a_local_disk_mounted_by_a_unit(fake: FakeRoot) -> None:
    fake.mounts(fake.p("/proc/mounts").read_text().replace("nas.local:/volume1/photos /mnt/nas nfs4",
                                                           "/dev/sdc1 /mnt/nas ext4"))
    fake.replace_in("/etc/fstab", NAS_LINE, "")
    fake.drop_in("[Unit]\nAfter=remote-fs.target\n")
    assert run_check("boot-kubernetes-after-mount", fake).verdict is Verdict.FAIL


def test_no_kubernetes_unit_warns_with_the_drop_in_for_k3s(fake: FakeRoot) -> None:
    os.remove(fake.p("/etc/systemd/system/k3s.service"))
    outcome = run_check("boot-kubernetes-after-mount", fake)
    assert outcome.verdict is Verdict.WARN and "k3s.service.d" in outcome.fix
