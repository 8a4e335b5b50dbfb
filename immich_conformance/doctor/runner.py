"""Run the checks on a node as pytest tests (``suite.py``) and collect their results; a check that cannot run (the
node unreachable mid-way, a command missing) ends as a fail that says so, never as a traceback."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ..inner_pytest import InOrder, callers_settings_aside
from .checks import CHECKS, Check
from .node import Node, NodeError
from .settings import DoctorSettings
from .verdicts import Result, Verdict

SUITE = Path(__file__).with_name("suite.py")


class DoctorWarning(UserWarning):
    """A check that ended in warn."""


@dataclass
class DoctorRun:
    node: Node
    settings: DoctorSettings
    results: list[Result] = field(default_factory=list)

    def run(self, check: Check) -> Result:
        try:
            outcome = check.function(self.node, self.settings)
            result = Result(check.id, check.group, outcome.verdict, outcome.found, outcome.fix)
        except NodeError as exc:
            result = Result(check.id, check.group, Verdict.FAIL, f"could not check: {exc}",
                            "make the node reachable and run the doctor again")
        except Exception as exc:  # a check must end in a verdict, whatever the node holds
            result = Result(check.id, check.group, Verdict.FAIL,
                            f"the check could not run: {type(exc).__name__}: {exc}",
                            "report this with the node's details")
        self.results.append(result)
        return result


class _Plugin:
    def __init__(self, doctor: DoctorRun, checks: list[Check]) -> None:
        self.doctor = doctor
        self.checks = checks

    def pytest_generate_tests(self, metafunc: Any) -> None:
        if "check" in metafunc.fixturenames:
            metafunc.parametrize(("check", "doctor"), [(c, self.doctor) for c in self.checks],
                                 ids=[c.id for c in self.checks])


def reach(node: Node) -> None:
    """Raise NodeError unless the node answers a command."""
    done = node.run("true")
    if done.rc != 0:
        raise NodeError(f"cannot reach {node.spec}: {(done.stderr or done.stdout).strip()[:300] or f'rc {done.rc}'}")
    if node.fake_root and node.run("test -d %s", node.root).rc != 0:
        raise NodeError(f"--root {node.root}: no such folder on {node.spec}")


def run_checks(node: Node, settings: DoctorSettings, *, checks: list[Check] | None = None,
               junitxml: Path | None = None, html: Path | None = None) -> list[Result]:
    """Every check (or ``checks``) on ``node``, in order, as a pytest session; the results in the same order."""
    reach(node)
    doctor = DoctorRun(node, settings)
    args = [str(SUITE), "-p", "no:terminal", "-p", "no:cacheprovider", "--noconftest", "-c", os.devnull,
            "--rootdir", str(SUITE.parent), "--import-mode=importlib", "-o", "addopts=",
            "-W", f"default::{DoctorWarning.__module__}.{DoctorWarning.__name__}"]
    if junitxml is not None:
        args += ["--junitxml", str(junitxml), "-o", "junit_suite_name=immich-conformance-doctor"]
    if html is not None:
        args += ["--html", str(html), "--self-contained-html"]
    chosen = list(checks or CHECKS)
    in_order = InOrder("check")
    # The caller's pytest settings (a CI's PYTEST_ADDOPTS=--junitxml=...) are for its own run, not this one.
    with callers_settings_aside():
        status = pytest.main(args, plugins=[_Plugin(doctor, chosen), in_order])
    problem = in_order.problem()
    if problem or len(doctor.results) != len(chosen):
        raise NodeError(problem or f"pytest ran {len(doctor.results)} of the {len(chosen)} checks "
                        f"(exit status {status})")
    return doctor.results
