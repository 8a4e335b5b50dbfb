"""``immich-conformance rehearse``: the phases as a pytest run of their own, with JUnit and HTML reports."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .. import REPO_ROOT
from ..inner_pytest import InOrder, callers_settings_aside
from ..stack_checks.rendering import StackConfigError
from ..targets.stack_source import Placement
from .deployments import ClusterDeployment, Deployment
from .rehearsal import REHEARSAL, Rehearsal
from .releases import DEFAULT_FROM, DEFAULT_TO, RehearsalError, resolve
from .restored import RestoreRequest

PHASES_FILE = Path(__file__).with_name("test_phases.py")
RESTORE_PHASES_FILE = Path(__file__).with_name("test_restore_phases.py")


@dataclass
class RehearsalPlugin:
    """Hands the rehearsal to its phases and keeps their verdicts and times."""

    rehearsal: Rehearsal
    results: list[tuple[str, str, float]] = field(default_factory=list)
    in_order: InOrder = field(default_factory=lambda: InOrder("phase"))
    started: float = field(default_factory=time.monotonic)
    _reporter: Any = None
    _capture: Any = None

    def say(self, message: str) -> None:
        """A progress line, on the terminal as it happens (a phase's own output is captured)."""
        line = f"[rehearsal {time.monotonic() - self.started:6.1f}s] {message}"
        if self._reporter is not None:
            with self._capture.global_and_fixture_disabled():
                self._reporter.write_line(line)
        else:
            print(line, flush=True)

    def pytest_configure(self, config: pytest.Config) -> None:
        config.stash[REHEARSAL] = self.rehearsal

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self._reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        self._capture = session.config.pluginmanager.get_plugin("capturemanager")
        if self._capture is None:
            self._reporter = None

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]):  # noqa: ANN201
        outcome = yield
        report: pytest.TestReport = outcome.get_result()
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            name = item.name.split("_", 2)[-1].replace("_", " ")
            self.results.append((name, report.outcome, report.duration))
            if report.failed and self.rehearsal.failed_phase is None:
                self.rehearsal.failed_phase = name

    def pytest_sessionfinish(self) -> None:
        self.rehearsal.close()

    def pytest_terminal_summary(self, terminalreporter) -> None:  # noqa: ANN001
        r = self.rehearsal
        terminalreporter.section(f"upgrade rehearsal {r.release_from} -> {r.release_to} on {r.deployment}")
        width = max((len(name) for name, _, _ in self.results), default=0)
        for name, verdict, seconds in self.results:
            terminalreporter.write_line(f"  {name:<{width}} {verdict.upper():<8} {seconds:7.1f} s")
        problem = self.in_order.problem()
        if problem:
            terminalreporter.write_line(f"  {problem}")
        terminalreporter.write_line(f"  rehearsal {'PASSED' if self.passed() else 'FAILED'}")

    def passed(self) -> bool:
        """Every phase ran, in order, and none failed (a phase may skip itself: the optional load test)."""
        ran = [v for _, v, _ in self.results if v != "skipped"]
        return (bool(ran) and all(v == "passed" for v in ran) and not self.rehearsal.failed_phase
                and self.in_order.problem() is None)


def cluster_deployment(*, kubeconfig: Path | None, offline: bool, keep_cluster: bool = False,
                       overlay: str = "ci", placement: Placement | None = None) -> ClusterDeployment:
    if not offline and kubeconfig is None:
        raise RehearsalError("rehearse needs a place to deploy: --cluster offline, --kubeconfig PATH / KUBECONFIG, "
                             "or --runtime containers (Docker)")
    if kubeconfig is not None and not offline and not kubeconfig.is_file():
        raise RehearsalError(f"--kubeconfig {kubeconfig}: no such file")
    placement = placement or Placement()
    try:
        placement.check()
    except StackConfigError as exc:
        raise RehearsalError(str(exc)) from None
    return ClusterDeployment(kubeconfig=kubeconfig, offline=offline, keep_cluster=keep_cluster, overlay=overlay,
                             placement=placement)


def rehearse(*, ref_from: str | None, ref_to: str | None, deployment: Deployment, reports: Path,
             locust_seconds: int = 0, restore: RestoreRequest | None = None) -> int:
    """Run the rehearsal's phases from ``ref_from`` to ``ref_to`` on ``deployment``; 0 when every phase passed.
    With ``restore``: the user's backup (and a copy of their library) in place of the scenarios and seeded assets."""
    if restore is not None:
        restore.check(deployment)
        if locust_seconds:
            raise RehearsalError("--locust-seconds goes without --restore: the load test would upload into the "
                                 "restored library")
    if not deployment.builds_doubles and not (ref_from and ref_to):
        raise RehearsalError(f"on {deployment} give both --from and --to (git refs or Immich release tags): the "
                             "defaults name builds of the project's Immich double, which only the offline cluster "
                             "and --images local have")
    overlay = getattr(deployment, "overlay", "ci")
    # The git refs' stack/ copies hold the test secrets once rendered: they go when the rehearsal ends.
    with tempfile.TemporaryDirectory(prefix="immich-rehearsal-stacks-") as stacks:
        release_from = resolve(ref_from or DEFAULT_FROM, overlay, workdir=Path(stacks))
        release_to = resolve(ref_to or DEFAULT_TO, overlay, workdir=Path(stacks))
        deployment.preflight(release_from, lambda message: print(f"[rehearsal] {message}", flush=True))
        reports.mkdir(parents=True, exist_ok=True)
        rehearsal = Rehearsal(release_from, release_to, deployment, reports, locust_seconds=locust_seconds,
                              restore_request=restore)
        return run_phases(rehearsal, RESTORE_PHASES_FILE if restore else PHASES_FILE, reports)


def run_phases(rehearsal: Rehearsal, phases: Path, reports: Path) -> int:
    """The phases of ``phases`` on ``rehearsal``, one after another in the order written, as a pytest run with JUnit
    and HTML reports in ``reports``; 0 when every phase ran and passed."""
    plugin = RehearsalPlugin(rehearsal)
    rehearsal.progress = plugin.say
    with callers_settings_aside():  # a CI's PYTEST_ADDOPTS (-k, -n) is for its own run, not the gate's
        code = pytest.main(
            [str(phases), "-p", "no:cacheprovider", "-q", "--rootdir", str(REPO_ROOT),
             f"--junitxml={reports / 'rehearsal.xml'}", f"--html={reports / 'rehearsal.html'}",
             "--self-contained-html", "-o", "junit_suite_name=upgrade-rehearsal"],
            plugins=[plugin, plugin.in_order],
        )
    return 0 if code == 0 and plugin.passed() else 1
