"""The rehearsal's phases, in order; each is a test case of its own. A phase after a failed one is skipped."""

from __future__ import annotations

import pytest

from .rehearsal import REHEARSAL, Rehearsal


@pytest.fixture
def rehearsal(request: pytest.FixtureRequest) -> Rehearsal:
    return request.config.stash[REHEARSAL]


@pytest.fixture
def phase(request: pytest.FixtureRequest) -> str:
    return request.node.name


def _phase(rehearsal: Rehearsal, name: str) -> None:
    """Skip a phase when an earlier one failed: it would only fail for the same reason."""
    if rehearsal.failed_phase:
        pytest.skip(f"the phase '{rehearsal.failed_phase}' failed")


def test_1_deploy_the_from_release(rehearsal: Rehearsal, phase: str) -> None:
    _phase(rehearsal, phase)
    rehearsal.deploy_from()


def test_2_scenarios_on_the_from_release(rehearsal: Rehearsal, phase: str) -> None:
    _phase(rehearsal, phase)
    rehearsal.scenarios("before")


def test_3_seed_assets(rehearsal: Rehearsal, phase: str) -> None:
    _phase(rehearsal, phase)
    rehearsal.seed()


def test_4_upgrade_to_the_to_release(rehearsal: Rehearsal, phase: str) -> None:
    _phase(rehearsal, phase)
    rehearsal.upgrade()


def test_5_verify_the_seeded_assets(rehearsal: Rehearsal, phase: str) -> None:
    _phase(rehearsal, phase)
    rehearsal.verify()


def test_6_scenarios_on_the_to_release(rehearsal: Rehearsal, phase: str) -> None:
    _phase(rehearsal, phase)
    rehearsal.scenarios("after")
    rehearsal.delete_seeded()


def test_7_upload_throughput_on_the_to_release(rehearsal: Rehearsal, phase: str) -> None:
    _phase(rehearsal, phase)
    rehearsal.load_test()
