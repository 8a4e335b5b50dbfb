"""The suite's pytest plugin: the target option, the session's target, and failure diagnostics.

`pytest features/` runs the contract scenarios against `--target` (default: the embedded sandbox). When a scenario
fails, the logs its components wrote during it are attached to the report (terminal, JUnit XML, HTML). A step that
needs what the target cannot do raises TargetUnsupported, and its scenario is reported skipped with the reason.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from .targets import TARGET_NAMES, LogMarks, Target, TargetUnsupported
from .targets.live import SETTINGS_HELP, LiveSettings, LiveSettingsError, LiveTarget
from .targets.sandbox import Sandbox

LOG_MARKS = pytest.StashKey[LogMarks]()
TARGET_ENV = "IMMICH_CONFORMANCE_TARGET"
LIVE_CONFIG_ENV = "IMMICH_CONFORMANCE_LIVE_CONFIG"
LIVE_TARGET = pytest.StashKey[LiveTarget]()
RUNTIME_ENV = "IMMICH_CONFORMANCE_RUNTIME"
RUNTIMES = ("processes", "containers")
IMAGE_MODES = ("pinned", "local")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("immich-conformance", "Immich conformance suite")
    group.addoption(
        "--target",
        default=os.environ.get(TARGET_ENV, "sandbox"),
        help=f"where the stack under test runs: {', '.join(TARGET_NAMES)} (default sandbox; env {TARGET_ENV})",
    )
    group.addoption("--keep-sandbox", action="store_true", help="keep the sandbox's work folder (logs, NAS, database)")
    group.addoption("--runtime", default=os.environ.get(RUNTIME_ENV, "processes"),
                    help="how the sandbox runs its components: processes (local processes, the default) or "
                         f"containers (Docker containers made from the rendered stack) (env {RUNTIME_ENV})")
    group.addoption("--images", default="pinned",
                    help="with --runtime containers: pinned (the images stack/ pins, pulled when missing; the "
                         "default) or local (the project's own images, built from this repository)")
    group.addoption("--cluster", choices=["offline"], default=None,
                    help="with --target cluster: build and run a single-node cluster on this machine, deploy, test "
                         "and tear it down (otherwise: the cluster of --kubeconfig / KUBECONFIG)")
    group.addoption("--kubeconfig", default=os.environ.get("KUBECONFIG"),
                    help="with --target cluster: an existing kind or k3s cluster (env KUBECONFIG)")
    group.addoption("--keep-cluster", action="store_true",
                    help="with --cluster offline: leave the cluster running after the run (immich-conformance "
                         "cluster down stops it)")
    group.addoption("--deployed", action="store_true",
                    help="with --target cluster: test the stack already deployed (no fresh deployment); with "
                         "--runtime containers: the run of IMMICH_CONFORMANCE_CONTAINERS_RUN. Needs "
                         "IMMICH_CONFORMANCE_API_KEY")
    group.addoption("--live-config", default=os.environ.get(LIVE_CONFIG_ENV),
                    help=f"the live target's settings file (YAML; env {LIVE_CONFIG_ENV})")
    group.addoption("--allow-large-external", action="store_true",
                    help="live target: allow bodies over the edge limit to the public hostname")


def pytest_configure(config: pytest.Config) -> None:
    target = config.getoption("--target")
    if target not in TARGET_NAMES:
        raise pytest.UsageError(f"--target {target!r} is not a target: choose one of {', '.join(TARGET_NAMES)}")
    if target == "cluster" and not (config.getoption("--cluster") or config.getoption("--kubeconfig")):
        raise pytest.UsageError("--target cluster needs a cluster: --cluster offline (build and run one on this "
                                "machine) or --kubeconfig PATH / KUBECONFIG (an existing kind or k3s cluster)")
    if target == "live":
        config.stash[LIVE_TARGET] = _live_target(config)
    if config.getoption("--runtime") not in RUNTIMES:
        raise pytest.UsageError(f"--runtime {config.getoption('--runtime')!r} (or {RUNTIME_ENV}): choose "
                                f"{' or '.join(RUNTIMES)}")
    if config.getoption("--deployed") and target == "sandbox" and config.getoption("--runtime") == "processes":
        raise pytest.UsageError("--deployed tests a stack that is already up: with --target cluster, or with "
                                "--runtime containers (a run another process owns); the processes sandbox is "
                                "always started fresh")
    if config.getoption("--images") not in IMAGE_MODES:
        raise pytest.UsageError(f"--images {config.getoption('--images')!r}: choose {' or '.join(IMAGE_MODES)}")


def _live_target(config: pytest.Config) -> LiveTarget:
    path = config.getoption("--live-config")
    if not path:
        raise pytest.UsageError(f"--target live needs its settings: --live-config PATH (or {LIVE_CONFIG_ENV})\n\n"
                                f"{SETTINGS_HELP}")
    try:
        settings = LiveSettings.load(Path(path))
        return LiveTarget(settings, allow_large_external=config.getoption("--allow-large-external")).start()
    except LiveSettingsError as exc:
        raise pytest.UsageError(f"--target live: {exc}") from None


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")

    def progress(message: str) -> None:
        if reporter is not None:
            reporter.write_line(f"[{request.config.getoption('--target')}] {message}")

    if LIVE_TARGET in request.config.stash:
        yield request.config.stash[LIVE_TARGET]
        return
    if request.config.getoption("--target") == "cluster":
        from .targets.cluster import ClusterTarget

        kubeconfig = request.config.getoption("--kubeconfig")
        cluster = ClusterTarget(
            kubeconfig=Path(kubeconfig) if kubeconfig else None,
            offline=request.config.getoption("--cluster") == "offline",
            keep=request.config.getoption("--keep-cluster"),
            deploy=not request.config.getoption("--deployed"),
            progress=progress,
        )
        try:
            yield cluster.start()
        finally:
            cluster.close()
        return
    if request.config.getoption("--runtime") == "containers":
        from .containers.engine import ContainersError
        from .targets.containers import ContainersSandbox
        from .targets.containers_attached import AttachedContainers

        try:
            containers = AttachedContainers.from_environment(progress) if request.config.getoption("--deployed") \
                else ContainersSandbox(images=request.config.getoption("--images"),
                                       keep=request.config.getoption("--keep-sandbox"), progress=progress)
            containers.start()
        except ContainersError as exc:
            pytest.exit(f"--runtime containers: {exc}", returncode=pytest.ExitCode.USAGE_ERROR)
        try:
            yield containers
        finally:
            containers.close()
        return
    sandbox = Sandbox(keep=request.config.getoption("--keep-sandbox"), progress=progress)
    with sandbox:
        yield sandbox


@pytest.fixture(autouse=True)
def _scenario_log_marks(request: pytest.FixtureRequest) -> None:
    """For every scenario: where each component's log stood when it began (read back if it fails)."""
    if "_pytest_bdd_example" in request.fixturenames:  # every pytest-bdd scenario has it
        target: Target = request.getfixturevalue("target")
        request.node.stash[LOG_MARKS] = target.log_marks()


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
        for component, text in target.diagnostics(item.stash[LOG_MARKS]).items():
            if text.strip():
                body = f"----- {component} log during this scenario -----\n{text[-20000:]}"
                report.sections.append((f"Captured stdout {component} log", body))
