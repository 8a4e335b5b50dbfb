"""What a scenario changes on the target is put back when it ends, whatever its steps did: the NAS taken away comes
back (and Immich with it) when the check after it fails, a restarted Deployment is waited for again when its own wait
failed; a scenario whose steps put everything back leaves the teardown nothing to do; an undo that fails is one line;
one the target cannot do (its scenario is skipped) is no failure.

The scenarios run through the real step functions (steps/cluster_steps.py) against a stand-in cluster target that
keeps its NAS in a folder and writes down what it was asked.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from immich_conformance import REPO_ROOT

NAS_SCENARIO = """\
Feature: Teardown
  Scenario: The NAS goes away
    When the NAS library is unmounted and immich-server restarts
    Then immich-server does not become Ready and nothing is written where the NAS belongs
    When the NAS library is mounted again
    Then immich-server becomes Ready again
"""

RESTART_SCENARIO = """\
Feature: Teardown
  Scenario: Postgres restarts
    When the Postgres pod is deleted and a new one is Ready
"""

CONFTEST = """\
import json
import os
from pathlib import Path

import pytest

from immich_conformance.targets.base import Target, TargetUnsupported

pytest_plugins = ["immich_conformance.pytest_plugin", "steps.context", "steps.cluster_steps"]
BEHAVIOUR = json.loads(os.environ["STANDIN_BEHAVIOUR"])


class StandInCluster(Target):
    name = "stand-in"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.calls = folder / "calls.txt"

    def _say(self, call: str) -> None:
        with self.calls.open("a") as f:
            f.write(call + "\\n")

    @property
    def service_token_headers(self) -> dict[str, str]:
        return {}

    @property
    def nas_root(self) -> Path:
        return self.folder / "nas"

    def unmount_nas(self) -> None:
        self._say("unmount_nas")
        self.nas_root.rename(self.nas_root.with_name("nas.unmounted"))

    def mount_nas(self) -> bool:
        away = self.nas_root.with_name("nas.unmounted")
        if self.nas_root.exists() or not away.exists():
            self._say("mount_nas: already mounted")
            return False
        self._say("mount_nas")
        away.rename(self.nas_root)
        return True

    def restart_without_waiting(self, deployment: str) -> float:
        self._say(f"restart_without_waiting {deployment}")
        return 1.0

    def restart(self, deployment: str) -> float:
        self._say(f"restart {deployment}")
        if BEHAVIOUR.get("unsupported"):
            raise TargetUnsupported("restarting pods needs a cluster")
        if BEHAVIOUR.get("restart_fails"):
            raise TimeoutError(f"{deployment} not Ready")
        return 1.0

    def wait_available(self, names=None, *, since=0.0, timeout=300) -> float:
        self._say(f"wait_available {' '.join(names or [])}")
        if BEHAVIOUR.get("unsupported"):
            raise TargetUnsupported("waiting for Deployments needs a cluster")
        if BEHAVIOUR.get("wait_fails"):
            raise TimeoutError("still not Ready\\nmore detail")
        return 0.0

    def stays_unready(self, deployment: str, *, since: float, seconds: float) -> bool:
        return BEHAVIOUR.get("stays_unready", True)

    def close(self) -> None:
        pass


@pytest.fixture(scope="session")
def target() -> StandInCluster:
    folder = Path(os.environ["STANDIN_FOLDER"])
    (folder / "nas").mkdir(exist_ok=True)
    return StandInCluster(folder)


@pytest.fixture(scope="session")
def ledger() -> None:
    return None
"""


def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, feature: str,
        **behaviour: bool) -> tuple[pytest.RunResult, list[str]]:
    """Run ``feature`` against the stand-in; the result and the calls the target received, in order."""
    folder = pytester.path / "standin"
    folder.mkdir()
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    monkeypatch.setenv("STANDIN_FOLDER", str(folder))
    monkeypatch.setenv("STANDIN_BEHAVIOUR", json.dumps(behaviour))
    pytester.makeconftest(CONFTEST)
    pytester.makefile(".feature", teardown=feature)
    pytester.makepyfile(test_teardown='from pytest_bdd import scenarios\nscenarios("teardown.feature")\n')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    calls = folder / "calls.txt"
    return result, calls.read_text().splitlines() if calls.exists() else []


def nas_in_place(pytester: pytest.Pytester) -> bool:
    folder: Path = pytester.path / "standin"
    return (folder / "nas").is_dir() and not (folder / "nas.unmounted").exists()


def test_the_nas_comes_back_when_the_check_after_it_fails(pytester: pytest.Pytester,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    result, calls = run(pytester, monkeypatch, NAS_SCENARIO, stays_unready=False)
    result.assert_outcomes(failed=1)
    assert nas_in_place(pytester), calls
    assert calls == ["unmount_nas", "restart_without_waiting immich-server", "mount_nas", "restart immich-server"]


def test_a_scenario_that_put_the_nas_back_leaves_the_teardown_nothing_to_do(pytester: pytest.Pytester,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    result, calls = run(pytester, monkeypatch, NAS_SCENARIO)
    result.assert_outcomes(passed=1)
    assert nas_in_place(pytester)
    assert calls == ["unmount_nas", "restart_without_waiting immich-server", "mount_nas", "restart immich-server",
                     "mount_nas: already mounted"]


def test_a_restart_whose_wait_failed_is_waited_for_again(pytester: pytest.Pytester,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    result, calls = run(pytester, monkeypatch, RESTART_SCENARIO, restart_fails=True)
    result.assert_outcomes(failed=1)
    assert calls == ["restart immich-postgres", "wait_available immich-postgres"]


def test_an_undo_that_fails_is_one_line_naming_it(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    result, calls = run(pytester, monkeypatch, RESTART_SCENARIO, wait_fails=True)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*putting back what the scenario changed failed: immich-postgres Ready again: "
                                 "still not Ready"])
    assert "Traceback" not in result.stdout.str() and "more detail" not in result.stdout.str()


def test_a_target_that_cannot_restart_skips_the_scenario_and_has_nothing_to_undo(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    result, calls = run(pytester, monkeypatch, RESTART_SCENARIO, unsupported=True)
    result.assert_outcomes(skipped=1)
    assert calls == ["restart immich-postgres", "wait_available immich-postgres"]
