"""The internal drive against a fake root: Postgres's folder local, owned by the image's user with mode 0700, with
free space; the model cache."""

from __future__ import annotations

import os
import shutil

import pytest

from immich_conformance.doctor.settings import Limits
from immich_conformance.doctor.verdicts import Verdict

from .fakeroot import MODELS, MOUNTS, POSTGRES, FakeRoot, run_check, settings

DRIVE = "/dev/sdb1 /mnt/internal_drive ext4 rw,relatime 0 0\n"


def test_every_internal_drive_check_passes_on_a_prepared_node(fake: FakeRoot) -> None:
    for check in ("postgres-folder", "postgres-local-filesystem", "postgres-owner-and-mode", "postgres-free-space",
                  "model-cache-folder", "model-cache-free-space"):
        outcome = run_check(check, fake)
        assert outcome.verdict is Verdict.PASS, (check, outcome)


def test_a_missing_postgres_folder_fails_with_the_install_command(fake: FakeRoot) -> None:
    shutil.rmtree(fake.p(POSTGRES))
    outcome = run_check("postgres-folder", fake)
    assert outcome.verdict is Verdict.FAIL
    assert outcome.fix == f"install -d -o 999 -g 999 -m 0700 {POSTGRES}"
    assert run_check("postgres-owner-and-mode", fake).verdict is Verdict.FAIL


@pytest.mark.parametrize(("line", "verdict", "words"), [
    ("nas.local:/volume1/db /mnt/internal_drive nfs4 rw,hard 0 0", Verdict.FAIL, "network filesystem"),
    ("tmpfs /mnt/internal_drive tmpfs rw,size=1g 0 0", Verdict.FAIL, "lost at every reboot"),
    ("overlay /mnt/internal_drive overlay rw,lowerdir=/a,upperdir=/b 0 0", Verdict.WARN, "overlay"),
])
def test_postgres_on_a_network_or_volatile_filesystem(fake: FakeRoot, line: str, verdict: Verdict, words: str) -> None:
    fake.mounts(MOUNTS.replace(DRIVE, line + "\n"))
    outcome = run_check("postgres-local-filesystem", fake)
    assert outcome.verdict is verdict and words in outcome.found, outcome


@pytest.mark.parametrize(("uid", "mode", "verdict"), [
    (999, 0o750, Verdict.WARN),
    (999, 0o755, Verdict.FAIL),
    (0, 0o700, Verdict.FAIL),
    (1000, 0o700, Verdict.FAIL),
])
def test_postgres_owner_and_mode(fake: FakeRoot, uid: int, mode: int, verdict: Verdict) -> None:
    os.chown(fake.p(POSTGRES), uid, uid)
    fake.p(POSTGRES).chmod(mode)
    outcome = run_check("postgres-owner-and-mode", fake)
    assert outcome.verdict is verdict, outcome
    assert outcome.fix == f"chown 999:999 {POSTGRES} && chmod 0700 {POSTGRES}"


def test_the_owner_expected_is_the_images_user_from_the_overlay(fake: FakeRoot) -> None:
    os.chown(fake.p(POSTGRES), 70, 70)  # e.g. an Alpine postgres image's user
    assert run_check("postgres-owner-and-mode", fake, settings(postgres_uid=70)).verdict is Verdict.PASS
    assert run_check("postgres-owner-and-mode", fake).verdict is Verdict.FAIL


@pytest.mark.parametrize(("check", "path", "field"), [("postgres-free-space", POSTGRES, "postgres"),
                                                       ("model-cache-free-space", MODELS, "models")])
def test_free_space_passes_warns_and_fails_at_its_limits(fake: FakeRoot, check: str, path: str, field: str) -> None:
    stats = os.statvfs(fake.p(path))
    above = 2 * stats.f_bavail * stats.f_frsize + 1

    def limits(warn: int, fail: int) -> Limits:
        return Limits(**{f"{field}_warn": warn, f"{field}_fail": fail})  # type: ignore[arg-type]

    assert run_check(check, fake, settings(limits=limits(1, 0))).verdict is Verdict.PASS
    assert run_check(check, fake, settings(limits=limits(above, 0))).verdict is Verdict.WARN
    assert run_check(check, fake, settings(limits=limits(above, above))).verdict is Verdict.FAIL


def test_model_cache_missing_fails_and_on_nfs_warns(fake: FakeRoot) -> None:
    fake.mounts(MOUNTS.replace(DRIVE, "nas.local:/volume1/db /mnt/internal_drive nfs4 rw,hard 0 0\n"))
    assert run_check("model-cache-folder", fake).verdict is Verdict.WARN
    shutil.rmtree(fake.p(MODELS))
    outcome = run_check("model-cache-folder", fake)
    assert outcome.verdict is Verdict.FAIL and outcome.fix == f"install -d -m 0755 {MODELS}"
