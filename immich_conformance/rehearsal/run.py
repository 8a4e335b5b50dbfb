"""``immich-conformance rehearse``: the phases as a pytest run of their own, with JUnit and HTML reports."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .. import REPO_ROOT
from .rehearsal import REHEARSAL, Rehearsal
from .releases import DEFAULT_FROM, DEFAULT_TO, RehearsalError, resolve

PHASES_FILE = Path(__file__).with_name("test_phases.py")


@dataclass
class RehearsalPlugin:
    """Hands the rehearsal to its phases and keeps their verdicts and times."""

    rehearsal: Rehearsal
    results: list[tuple[str, str, float]] = field(default_factory=list)

    def pytest_configure(self, config: pytest.Config) -> None:
        config.stash[REHEARSAL] = self.rehearsal

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
        terminalreporter.section(f"upgrade rehearsal {r.release_from} -> {r.release_to}")
        for name, verdict, seconds in self.results:
            terminalreporter.write_line(f"  {name:<32} {verdict.upper():<8} {seconds:7.1f} s")
        ran = [v for _, v, _ in self.results if v != "skipped" or self.rehearsal.failed_phase]
        verdict = "PASSED" if ran and all(v in ("passed", "skipped") for v in ran) and not self.rehearsal.failed_phase \
            else "FAILED"
        terminalreporter.write_line(f"  rehearsal {verdict}")


def rehearse(*, ref_from: str | None, ref_to: str | None, kubeconfig: Path | None, offline: bool,
             reports: Path, keep_cluster: bool = False, overlay: str = "ci", locust_seconds: int = 0) -> int:
    if not offline and kubeconfig is None:
        raise RehearsalError("rehearse needs a cluster: --cluster offline, or --kubeconfig PATH / KUBECONFIG")
    if not offline and not (ref_from and ref_to):
        raise RehearsalError("on an existing cluster give both --from and --to (git refs or Immich release tags)")
    release_from = resolve(ref_from or DEFAULT_FROM)
    release_to = resolve(ref_to or DEFAULT_TO)
    reports.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    rehearsal = Rehearsal(release_from, release_to, kubeconfig, offline, reports,
                          progress=lambda m: print(f"[rehearsal {time.monotonic() - started:6.1f}s] {m}", flush=True),
                          keep_cluster=keep_cluster, overlay=overlay, locust_seconds=locust_seconds)
    plugin = RehearsalPlugin(rehearsal)
    code = pytest.main(
        [str(PHASES_FILE), "-p", "no:cacheprovider", "-q", "--rootdir", str(REPO_ROOT),
         f"--junitxml={reports / 'rehearsal.xml'}", f"--html={reports / 'rehearsal.html'}", "--self-contained-html",
         "-o", "junit_suite_name=upgrade-rehearsal"],
        plugins=[plugin],
    )
    return 0 if code == 0 else 1
