"""The Docker engine for the containers runtime's tests, and running the suite as a separate pytest process.

Tests that need an engine skip, with the reason, when not root, or when no engine answers and none can be started
here (no dockerd installed: ./setup.sh installs it). An engine these tests start (as setup.sh would: the egress
guard first, then ``dockerd --ip-forward=false``) is stopped when the test run ends.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from immich_conformance import REPO_ROOT
from immich_conformance.containers import cleanup, engine
from immich_conformance.procs import WaitTimeout, wait_until

if TYPE_CHECKING:
    import docker


def _answers() -> bool:
    try:
        engine.connect().close()
    except engine.ContainersError:
        return False
    return True


def _skip(reason: str) -> None:
    print(f"tests/containers: skipped: {reason}", file=sys.stderr)
    pytest.skip(reason)


def _add_guard() -> None:
    for uplink in engine.uplinks():
        if subprocess.run(["iptables", "-w", "-n", "-L", "DOCKER-USER"], capture_output=True).returncode != 0:
            subprocess.run(["iptables", "-w", "-N", "DOCKER-USER"], check=True, capture_output=True)
        rule = engine.guard_rule(uplink)
        if subprocess.run(["iptables", "-w", "-C", "DOCKER-USER", *rule], capture_output=True).returncode != 0:
            subprocess.run(["iptables", "-w", "-I", "DOCKER-USER", "1", *rule], check=True, capture_output=True)


@pytest.fixture(scope="session")
def docker_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A Docker engine that answers, with the egress guard in place."""
    if os.geteuid() != 0:
        _skip("the containers runtime runs as root (CI runs these tests as root)")
    started: subprocess.Popen[bytes] | None = None
    if not _answers():
        if os.environ.get("DOCKER_HOST") or not shutil.which("dockerd"):
            _skip(f"no Docker engine answers at {engine.engine_address()} and none can be started here "
                  "(./setup.sh installs docker.io and starts dockerd)")
        _add_guard()
        log = tmp_path_factory.mktemp("dockerd") / "dockerd.log"
        started = subprocess.Popen(["dockerd", "--ip-forward=false"], stdout=log.open("wb"),
                                   stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_until(_answers, timeout=60, interval=0.5, what="dockerd answering")
        except WaitTimeout:
            started.terminate()
            _skip(f"dockerd did not answer within 60 s: {log.read_text()[-500:]}")
    problem = engine.egress_guard_problem()
    if problem:
        pytest.fail(f"the egress guard is missing on this machine: {problem}")
    yield
    if started is not None:
        started.send_signal(signal.SIGTERM)
        started.wait(timeout=60)


@pytest.fixture
def client(docker_engine: None) -> Iterator[docker.DockerClient]:
    """A client of the engine, closed after the test."""
    docker_client = engine.connect()
    yield docker_client
    docker_client.close()


def suite_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "features/", "-q", "-p", "no:cacheprovider", *args]


@dataclass(frozen=True)
class SuiteRun:
    pid: int
    returncode: int
    output: str


def _interruptible() -> None:
    """In the child before it runs: Ctrl-C's default, as from a terminal. A process started in the background by a
    shell without job control ignores SIGINT, and so would every run this one starts (Python then installs no
    KeyboardInterrupt handler), making the Ctrl-C tests send a signal nobody hears."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_suite(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """`pytest features/ ARGS` started in a separate process (the repository as working folder)."""
    return subprocess.Popen(suite_argv(*args), cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, **(env or {})}, preexec_fn=_interruptible)


def run_suite(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> SuiteRun:
    """`pytest features/ ARGS` run to its end in a separate process."""
    process = start_suite(*args, env=env)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        raise AssertionError(f"pytest {' '.join(args)} took over {timeout:.0f} s:\n{output[-3000:]}") from None
    return SuiteRun(process.pid, process.returncode, output)


def leftovers_of(client: docker.DockerClient, pid: int) -> list[str]:
    """Every container and network a containers run of process ``pid`` made that is still there."""
    filters = {"label": f"{cleanup.RUNTIME_LABEL}={cleanup.RUNTIME}"}
    items = [*client.containers.list(all=True, filters=filters), *client.networks.list(filters=filters)]
    found = []
    for item in items:
        labels = item.attrs.get("Labels") or (item.attrs.get("Config") or {}).get("Labels") or {}
        if labels.get(cleanup.PROCESS_LABEL, "").startswith(f"{pid}:"):
            found.append(item.name)
    return found


def work_folders(output: str) -> list[Path]:
    """The work folders a run reported."""
    return sorted({Path(found) for found in re.findall(r"work folder (/[^\s)]+)", output)})
