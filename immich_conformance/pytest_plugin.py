"""The suite's pytest plugin: the target option, the session's target, and failure diagnostics.

`pytest features/` runs the contract scenarios against `--target` (default: the embedded sandbox). When a scenario
fails, the logs its components wrote during it are attached to the report (terminal, JUnit XML, HTML). A step that
needs what the target cannot do raises TargetUnsupported, and its scenario is reported skipped with the reason.
When a component the target started exits during the run, the scenario that was running fails with one line naming
it (its last log lines attached), and every later scenario fails at once with that line.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import pytest

from .log_colours import without_colours
from .targets import TARGET_NAMES, LogMarks, Target, TargetUnsupported
from .targets.immich_server import ServerCommand, ServerCommandError
from .targets.live import SETTINGS_HELP
from .targets.sandbox import Sandbox
from .targets.spec import TargetSetupError, TargetSpec, TargetSpecError, open_target
from .targets.supervision import Death

LOG_MARKS = pytest.StashKey[LogMarks]()
SCENARIO_TARGET = pytest.StashKey[Target]()
DEATHS_SHOWN = pytest.StashKey[set[str]]()
TARGET_ENV = "IMMICH_CONFORMANCE_TARGET"
LIVE_CONFIG_ENV = "IMMICH_CONFORMANCE_LIVE_CONFIG"
LIVE_TARGET = pytest.StashKey[Target]()
TARGET_SPEC = pytest.StashKey[TargetSpec]()
RUNTIME_ENV = "IMMICH_CONFORMANCE_RUNTIME"
SERVER_CMD_ENV = "IMMICH_CONFORMANCE_IMMICH_SERVER_CMD"
SERVER_ENV_FILE_ENV = "IMMICH_CONFORMANCE_IMMICH_SERVER_ENV"
SERVER_COMMAND = pytest.StashKey[ServerCommand]()
SANDBOX_NAS_ENV = "IMMICH_CONFORMANCE_SANDBOX_NAS"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("immich-conformance", "Immich conformance suite")
    group.addoption(
        "--target",
        default=os.environ.get(TARGET_ENV, "sandbox"),
        help=f"where the stack under test runs: {', '.join(TARGET_NAMES)} (default sandbox; env {TARGET_ENV})",
    )
    group.addoption("--keep-sandbox", action="store_true", help="keep the sandbox's work folder (logs, NAS, database)")
    group.addoption("--sandbox-nas", default=os.environ.get(SANDBOX_NAS_ENV),
                    help="the processes sandbox's NAS folder, e.g. a mount point (default: in its work folder); it "
                         "must be empty, is emptied when the sandbox stops, and what a killed sandbox left there is "
                         f"removed by the next one (env {SANDBOX_NAS_ENV})")
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
                         "cluster down stops it); one that was already up is always left running")
    group.addoption("--namespace", default="immich",
                    help="with --target cluster: the namespace of the test deployment (default immich, the stack's "
                         "own). Another one deploys beside an Immich in immich: node ports chosen by the cluster, "
                         "host folders under --scratch")
    group.addoption("--scratch", default=None,
                    help="with --target cluster: a node folder for the test deployment's NAS, database and model "
                         "cache (needed with --namespace)")
    group.addoption("--deployed", action="store_true",
                    help="with --target cluster: test the stack already deployed (no fresh deployment); with "
                         "--runtime containers: the run of IMMICH_CONFORMANCE_CONTAINERS_RUN. Needs "
                         "IMMICH_API_KEY")
    group.addoption("--live-config", default=os.environ.get(LIVE_CONFIG_ENV),
                    help=f"the live target's settings file (YAML; env {LIVE_CONFIG_ENV})")
    group.addoption("--lan-only", action="store_true",
                    help="live target: check the LAN path alone (no Access service token); without it a missing "
                         "token stops the run")
    group.addoption("--allow-large-external", action="store_true",
                    help="live target: allow bodies over the edge limit to the public hostname")
    group.addoption("--immich-server-cmd", default=os.environ.get(SERVER_CMD_ENV),
                    help="sandbox: run this Immich server command (shlex-split) in place of the API double, with "
                         "the same Immich environment, plus a Redis of its own and DB_VECTOR_EXTENSION=pgvector "
                         f"(env {SERVER_CMD_ENV})")
    group.addoption("--immich-server-env", default=os.environ.get(SERVER_ENV_FILE_ENV),
                    help="with --immich-server-cmd: a dotenv file of extra environment for the server "
                         f"(env {SERVER_ENV_FILE_ENV})")


def pytest_configure(config: pytest.Config) -> None:
    _server_command(config)
    spec = target_spec(config)
    try:
        spec.check()
    except TargetSpecError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[TARGET_SPEC] = spec
    if getattr(config.option, "numprocesses", None) and (spec.target != "sandbox" or spec.runtime != "processes"):
        # Each pytest-xdist worker opens the target of its own: only the processes sandbox can be had twice.
        what = "the containers sandbox" if spec.target == "sandbox" else f"the {spec.target} target"
        raise pytest.UsageError(f"-n runs the tests in several workers, each opening a target of its own: {what} "
                                "is one per machine or deployment; drop -n")
    if spec.target == "live":  # settings and secrets checked before the session starts
        try:
            config.stash[LIVE_TARGET] = open_target(spec)
        except TargetSetupError as exc:
            raise pytest.UsageError(str(exc)) from None


def target_spec(config: pytest.Config) -> TargetSpec:
    """The target the options describe (see immich_conformance.targets.spec)."""
    def path(option: str) -> Path | None:
        value = config.getoption(option)
        return Path(value) if value else None

    scratch = config.getoption("--scratch")
    live = config.getoption("--live-config")
    if config.getoption("--target") == "live" and not live:
        raise pytest.UsageError(f"--target live needs its settings: --live-config PATH (or {LIVE_CONFIG_ENV})\n\n"
                                f"{SETTINGS_HELP}")
    return TargetSpec(
        target=config.getoption("--target"), runtime=config.getoption("--runtime"),
        keep=config.getoption("--keep-cluster") if config.getoption("--target") == "cluster"
        else config.getoption("--keep-sandbox"),
        deployed=config.getoption("--deployed"), images=config.getoption("--images"),
        sandbox_nas=path("--sandbox-nas"), server_command=config.stash.get(SERVER_COMMAND, None),
        kubeconfig=path("--kubeconfig"), offline_cluster=config.getoption("--cluster") == "offline",
        namespace=config.getoption("--namespace"), scratch=PurePosixPath(scratch) if scratch else None,
        live_settings=Path(live) if live else None, lan_only=config.getoption("--lan-only"),
        allow_large_external=config.getoption("--allow-large-external"))


def _server_command(config: pytest.Config) -> None:
    """--immich-server-cmd / --immich-server-env, checked before anything starts."""
    command, env_file = config.getoption("--immich-server-cmd"), config.getoption("--immich-server-env")
    if not command:
        if env_file:
            raise pytest.UsageError("--immich-server-env is the environment of --immich-server-cmd: give both")
        return
    try:
        config.stash[SERVER_COMMAND] = ServerCommand.parse(command, Path(env_file) if env_file else None)
    except ServerCommandError as exc:
        raise pytest.UsageError(str(exc)) from None


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")

    def progress(message: str) -> None:
        if reporter is not None:
            reporter.write_line(f"[{request.config.getoption('--target')}] {message}")

    if LIVE_TARGET in request.config.stash:
        yield request.config.stash[LIVE_TARGET]
        return
    try:
        opened = open_target(request.config.stash[TARGET_SPEC], progress)
    except TargetSetupError as exc:
        pytest.exit(str(exc), returncode=pytest.ExitCode.USAGE_ERROR)
    if isinstance(opened, Sandbox):
        capture = request.config.pluginmanager.get_plugin("capturemanager")
        for note in [*opened.notes, *filter(None, [opened.leftovers_removed])]:  # said past the output capture
            with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
                progress(note)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture(autouse=True)
def _scenario_log_marks(request: pytest.FixtureRequest) -> None:
    """For every scenario: where each component's log stood when it began (read back if it fails)."""
    if "_pytest_bdd_example" in request.fixturenames:  # every pytest-bdd scenario has it
        target: Target = request.getfixturevalue("target")
        request.node.stash[SCENARIO_TARGET] = target
        request.node.stash[LOG_MARKS] = target.log_marks()


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> None:
    """A scenario after a component died fails at once, with the death's line, instead of meeting a closed port."""
    target = pyfuncitem.stash.get(SCENARIO_TARGET, None)
    deaths = target.dead_components() if target is not None else []
    if deaths:
        pytest.fail(deaths[0].line, pytrace=False)


def _skip_info(reason: str) -> pytest.ExceptionInfo[BaseException]:
    try:
        raise pytest.skip.Exception(reason)
    except pytest.skip.Exception:
        return pytest.ExceptionInfo.from_current()


def _one_line(item: pytest.Item, report: pytest.TestReport, line: str) -> None:
    """Make the failure's report ``line`` alone (no traceback)."""
    try:
        pytest.fail(line, pytrace=False)
    except pytest.fail.Exception:
        report.longrepr = item.repr_failure(pytest.ExceptionInfo.from_current())  # type: ignore[arg-type]


def _death_report(item: pytest.Item, report: pytest.TestReport, deaths: list[Death]) -> None:
    """Rewrite a failure that came while a component was dead to the death's line; its last log lines go with the
    first failure that names it."""
    _one_line(item, report, deaths[0].line)
    shown = item.config.stash.setdefault(DEATHS_SHOWN, set())
    for death in deaths:
        if death.name not in shown:
            shown.add(death.name)
            report.sections.append((f"Captured stdout {death.name} exit", death.details))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    unsupported = call.excinfo is not None and call.excinfo.errisinstance(TargetUnsupported)
    if unsupported:  # reported as pytest's own skip: no failure's traceback is formatted only to be thrown away
        call.excinfo = _skip_info(str(call.excinfo.value))  # type: ignore[union-attr]
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if unsupported:
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: {call.excinfo.value}")  # type: ignore[union-attr]
        return
    target = item.stash.get(SCENARIO_TARGET, None)
    if report.failed and target is not None and (deaths := target.dead_components()):
        _death_report(item, report, deaths)
        return
    if report.failed and target is not None and (problem := target.storage_problem(item.stash.get(LOG_MARKS, None))):
        # the NAS cannot take files: the line says so; what the scenario saw goes with it, in one line too
        crash = getattr(report.longrepr, "reprcrash", None)
        seen = crash.message.splitlines()[0] if crash is not None and crash.message else ""
        if seen:
            report.sections.append(("Captured stdout what the scenario saw", seen[:500]))
        _one_line(item, report, problem)
        return
    if report.failed and LOG_MARKS in item.stash:
        try:
            target: Target = item._request.getfixturevalue("target")  # type: ignore[attr-defined]
        except (AssertionError, pytest.FixtureLookupError):
            return  # a failure in the session's last teardown (the run's clean-up) comes after the target stopped
        for component, text in target.diagnostics(item.stash[LOG_MARKS]).items():
            if text.strip():  # without Immich's colours: the report goes to files (JUnit, HTML) as well
                body = f"----- {component} log during this scenario -----\n{without_colours(text)[-20000:]}"
                report.sections.append((f"Captured stdout {component} log", body))
