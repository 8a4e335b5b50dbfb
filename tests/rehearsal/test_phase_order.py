"""The rehearsal's phases run one after another in the order written, each once, whatever the environment holds: a
plugin installed beside the suite that reorders tests (as pytest-randomly does) or deselects one, the caller's
PYTEST_ADDOPTS. Otherwise the gate could verify before it seeds and pass having checked nothing.

The phases run on a recording in the rehearsal's place (each phase's own work is the other rehearsal tests')."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from immich_conformance.rehearsal.rehearsal import Rehearsal
from immich_conformance.rehearsal.run import PHASES_FILE, RESTORE_PHASES_FILE, run_phases

from ..installed_plugins import DESELECTS_ONE, REVERSES, install

IN_ORDER = {
    PHASES_FILE: ["deploy_from", "scenarios before", "seed", "upgrade", "verify", "scenarios after", "delete_seeded",
                  "load_test"],
    RESTORE_PHASES_FILE: ["deploy_from", "restore_backup", "check_restored before", "upgrade",
                          "check_restored after"],
}


@dataclass
class Recording:
    """Stands in for a Rehearsal: each phase's work is a line in ``calls``."""

    release_from: str = "v3.0.3"
    release_to: str = "v3.1.0"
    deployment: str = "a recording"
    failed_phase: str | None = None
    progress: Callable[[str], None] = print
    calls: list[str] = field(default_factory=list)

    def __getattr__(self, name: str) -> Callable[..., None]:
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args: self.calls.append(" ".join([name, *args]))


def phases_of(phases: Path, tmp_path: Path) -> tuple[int, list[str]]:
    recording = Recording()
    rehearsal: Rehearsal = recording  # type: ignore[assignment]
    code = run_phases(rehearsal, phases, tmp_path / "reports")
    return code, [call for call in recording.calls if call != "close"]


@pytest.mark.parametrize("phases", IN_ORDER, ids=["upgrade", "restore"])
def test_the_phases_run_in_order_though_a_plugin_reorders_tests(phases: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    install(f"reverses_phases_{phases.stem}", REVERSES, tmp_path / "site", monkeypatch)
    assert phases_of(phases, tmp_path) == (0, IN_ORDER[phases])
    assert "rehearsal PASSED" in capsys.readouterr().out


def test_the_callers_pytest_addopts_selects_no_phase(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PYTEST_ADDOPTS", "-k verify")
    assert phases_of(PHASES_FILE, tmp_path) == (0, IN_ORDER[PHASES_FILE])


def test_a_phase_a_plugin_deselected_fails_the_rehearsal_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    install("deselects_a_phase", DESELECTS_ONE, tmp_path / "site", monkeypatch)
    code, calls = phases_of(PHASES_FILE, tmp_path)
    out = capsys.readouterr().out
    assert code == 1 and "upgrade" not in calls, calls
    assert ("1 of the 7 phases did not run (test_4_upgrade_to_the_to_release): a pytest plugin installed in this "
            "environment deselected them; uninstall it") in out, out
    assert "rehearsal FAILED" in out and "rehearsal PASSED" not in out
