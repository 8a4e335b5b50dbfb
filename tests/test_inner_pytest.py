"""The runs a command makes of its own keep their order and their tests whatever the environment holds: a plugin
installed beside the suite that reorders or deselects tests, the caller's PYTEST_ADDOPTS."""

from __future__ import annotations

from pathlib import Path

import pytest

from immich_conformance.inner_pytest import InOrder, callers_settings_aside, passed_tests

from .installed_plugins import DESELECTS_ONE, REVERSES, install

STEPS = "\n".join(f"def test_step_{n}():\n    pass\n" for n in range(1, 5))
ORDER = [f"test_step_{n}" for n in range(1, 5)]


class RunOrder:
    def __init__(self) -> None:
        self.ran: list[str] = []

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self.ran.append(nodeid.rpartition("::")[2])


@pytest.fixture
def steps(tmp_path: Path) -> Path:
    path = tmp_path / "steps" / "test_steps.py"
    path.parent.mkdir()
    path.write_text(STEPS)
    return path


def run(steps: Path, *plugins: object, args: tuple[str, ...] = ()) -> list[str]:
    """The order ``steps``'s tests ran in (pytest-randomly, when installed where the suite runs, stays out: the tests
    install their own reordering)."""
    order = RunOrder()
    pytest.main([str(steps), "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "--rootdir", str(steps.parent),
                 "-c", "/dev/null", "--import-mode=importlib", *args], plugins=[*plugins, order])
    return order.ran


def test_a_plugin_installed_beside_the_suite_reorders_a_plain_run(steps: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    assert run(steps) == ORDER
    install("reverses_tests_a", REVERSES, tmp_path / "site", monkeypatch)
    assert run(steps) == ORDER[::-1]


def test_in_order_the_tests_run_as_collected_though_a_plugin_reorders_them(steps: Path, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    install("reverses_tests_b", REVERSES, tmp_path / "site", monkeypatch)
    in_order = InOrder("step")
    assert run(steps, in_order) == ORDER
    assert in_order.problem() is None


def test_a_test_a_plugin_deselected_is_named(steps: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install("deselects_one_a", DESELECTS_ONE, tmp_path / "site", monkeypatch)
    in_order = InOrder("step")
    assert run(steps, in_order) == ["test_step_1", "test_step_2", "test_step_4"]
    assert in_order.problem() == ("1 of the 4 steps did not run (test_step_3): a pytest plugin installed in this "
                                  "environment deselected them; uninstall it")


def test_tests_run_out_of_order_are_named(steps: Path) -> None:
    in_order = InOrder("step")
    in_order.collected = [f"test_steps.py::{name}" for name in ORDER]
    in_order.ran = in_order.collected[::-1]
    assert in_order.problem() == ("the steps ran out of order (test_step_4, test_step_3, test_step_2, test_step_1): "
                                  "a pytest plugin installed in this environment reorders tests; uninstall it")


def test_a_run_that_collected_nothing_is_a_problem() -> None:
    assert InOrder("phase").problem() == "no phase was collected"


def test_the_callers_pytest_addopts_stays_out_of_the_run(steps: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_ADDOPTS", "-k step_2")
    assert run(steps) == ["test_step_2"]
    with callers_settings_aside():
        assert run(steps) == ORDER
    assert run(steps) == ["test_step_2"]


def test_passed_tests_counts_only_what_passed(tmp_path: Path) -> None:
    steps = tmp_path / "test_outcomes.py"
    steps.write_text("import pytest\n\ndef test_a():\n    pass\n\ndef test_b():\n    pytest.skip('no')\n\n"
                     "def test_c():\n    assert False\n\ndef test_d():\n    pass\n")
    junit = tmp_path / "junit.xml"
    run(steps, args=(f"--junitxml={junit}",))
    assert passed_tests(junit) == 2
    run(steps, args=(f"--junitxml={junit}", "-k", "test_b or test_c"))
    assert passed_tests(junit) == 0
