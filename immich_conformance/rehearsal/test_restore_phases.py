"""The rehearsal's phases with ``--restore``: the user's backup and library in place of seeded assets. Each phase is a
test case of its own; a phase after a failed one is skipped. The upgrade keeps the name and number it has in
``test_phases``."""

from __future__ import annotations

import pytest

from .rehearsal import REHEARSAL, Rehearsal


@pytest.fixture
def rehearsal(request: pytest.FixtureRequest) -> Rehearsal:
    return request.config.stash[REHEARSAL]


@pytest.fixture(autouse=True)
def _after_a_failure(rehearsal: Rehearsal) -> None:
    """Skip a phase when an earlier one failed: it would only fail for the same reason."""
    if rehearsal.failed_phase:
        pytest.skip(f"the phase '{rehearsal.failed_phase}' failed")


def test_1_deploy_the_from_release(rehearsal: Rehearsal) -> None:
    rehearsal.deploy_from()


def test_2_restore_the_backup(rehearsal: Rehearsal) -> None:
    rehearsal.restore_backup()


def test_3_check_the_restored_library(rehearsal: Rehearsal) -> None:
    rehearsal.check_restored("before")


def test_4_upgrade_to_the_to_release(rehearsal: Rehearsal) -> None:
    rehearsal.upgrade()


def test_5_check_the_restored_library_after_the_upgrade(rehearsal: Rehearsal) -> None:
    rehearsal.check_restored("after")
