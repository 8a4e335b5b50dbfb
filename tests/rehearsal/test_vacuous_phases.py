"""A rehearsal phase that had nothing to check fails: the verification with no asset seeded, the scenarios with none
passed (all skipped, or a caller's PYTEST_ADDOPTS turning the run into a collection)."""

from __future__ import annotations

from pathlib import Path

import pytest

from immich_conformance.rehearsal.rehearsal import Rehearsal


class OptionsOnly:
    """A deployment that only says how to run the scenarios: on the sandbox, with ``options``."""

    def __init__(self, *options: str) -> None:
        self.options = list(options)

    def scenario_options(self) -> tuple[list[str], dict[str, str]]:
        return self.options, {}


def rehearsal(tmp_path: Path, *options: str) -> Rehearsal:
    return Rehearsal("v3.0.3", "v3.1.0", OptionsOnly(*options), tmp_path, progress=print)  # type: ignore[arg-type]


def test_verifying_with_nothing_seeded_fails(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="no asset was seeded before the upgrade: there is nothing to verify"):
        rehearsal(tmp_path).verify()


def test_scenarios_that_all_skipped_fail_the_phase(tmp_path: Path) -> None:
    said = r"no scenario passed before the upgrade \(14 skipped, 30 deselected in .*\); report: "
    with pytest.raises(AssertionError, match=said):
        rehearsal(tmp_path, "-m", "cluster_only").scenarios("before")  # what only a cluster proves, on the sandbox


def test_the_callers_pytest_addopts_stays_out_of_the_scenarios(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PYTEST_ADDOPTS", "--collect-only")
    rehearsal(tmp_path, "-k", "the_mobile_app_can_discover_the_api").scenarios("after")
    assert "scenarios after: 1 passed, 43 deselected" in capsys.readouterr().out
