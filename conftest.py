"""The suite's pytest plumbing: the target option, the session's target, per-scenario context and diagnostics.

`pytest features/` runs the contract scenarios against `--target` (default: the embedded sandbox). When a scenario
fails, the logs its components wrote during it are attached to the report (terminal, JUnit XML, HTML).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from immich_conformance.targets import TARGET_NAMES, Target, TargetUnsupported
from immich_conformance.targets.sandbox import Sandbox

pytest_plugins = [
    "steps.context",
    "steps.lan_steps",
    "steps.external_steps",
    "steps.origin_steps",
    "steps.upload_steps",
    "steps.body_steps",
    "steps.websocket_steps",
]

LOG_MARKS = pytest.StashKey[dict[str, int]]()
TARGET_ENV = "IMMICH_CONFORMANCE_TARGET"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("immich-conformance", "Immich conformance suite")
    group.addoption(
        "--target",
        default=os.environ.get(TARGET_ENV, "sandbox"),
        help=f"where the stack under test runs: {', '.join(TARGET_NAMES)} (default sandbox; env {TARGET_ENV})",
    )
    group.addoption("--keep-sandbox", action="store_true", help="keep the sandbox's work folder (logs, NAS, database)")


def pytest_configure(config: pytest.Config) -> None:
    target = config.getoption("--target")
    if target not in TARGET_NAMES:
        raise pytest.UsageError(f"--target {target!r} is not a target: choose one of {', '.join(TARGET_NAMES)}")
    if target != "sandbox":
        raise pytest.UsageError(
            f"--target {target} is not available in this version of the suite: only the embedded sandbox is. "
            "Run without --target (or with --target sandbox)."
        )


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")

    def progress(message: str) -> None:
        if reporter is not None:
            reporter.write_line(f"[sandbox] {message}")

    sandbox = Sandbox(keep=request.config.getoption("--keep-sandbox"), progress=progress)
    with sandbox:
        yield sandbox


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if "target" in getattr(item, "fixturenames", ()):
        target: Target = item._request.getfixturevalue("target")  # type: ignore[attr-defined]
        item.stash[LOG_MARKS] = target.log_marks()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if call.excinfo is not None and call.excinfo.errisinstance(TargetUnsupported):
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: {call.excinfo.value}")
        return
    if report.failed and LOG_MARKS in item.stash:
        target: Target = item._request.getfixturevalue("target")  # type: ignore[attr-defined]
        for component, text in target.logs_since(item.stash[LOG_MARKS]).items():
            if text.strip():
                report.sections.append((f"Captured stdout {component} log", text[-20000:]))
