"""The containers runtime names a container that stopped while the run was up: how (exit code, the signal behind
it), when Docker says it stopped, its last log lines; a container that runs, or a run not yet up, names none."""

from __future__ import annotations

import re
from typing import Any

from immich_conformance.targets.containers import ContainersSandbox


class FakeContainer:
    """What ``dead_components`` asks of a Docker container: reload, status, State, the log's tail."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.status = "running"
        self.attrs: dict[str, Any] = {"State": {"Status": "running", "ExitCode": 0, "OOMKilled": False,
                                                "FinishedAt": "0001-01-01T00:00:00Z"}}
        self.reloads = 0

    def reload(self) -> None:
        self.reloads += 1

    def logs(self, tail: int | None = None) -> bytes:
        lines = [f"{self.name} line {n}" for n in range(40)]
        return "\n".join(lines[-tail:] if tail else lines).encode()

    def kill(self, exit_code: int, finished: str) -> None:
        self.status = "exited"
        self.attrs["State"].update({"Status": "exited", "ExitCode": exit_code, "FinishedAt": finished})


def sandbox_with(*names: str) -> tuple[ContainersSandbox, dict[str, FakeContainer]]:
    sandbox = ContainersSandbox(images="local")
    fakes = {name: FakeContainer(f"{sandbox.prefix}-{name}") for name in names}
    sandbox.containers.running = fakes  # type: ignore[assignment]
    sandbox._supervising = True
    return sandbox, fakes


def test_a_killed_container_is_named_with_the_signal_its_stop_time_and_log() -> None:
    sandbox, fakes = sandbox_with("immich-server", "database")
    assert sandbox.dead_components() == []
    fakes["immich-server"].kill(137, "2026-12-04T14:46:03.123456789Z")
    deaths = sandbox.dead_components()
    assert [d.name for d in deaths] == ["immich-server"], deaths
    assert re.fullmatch(r"immich-server exited with code 137 \(signal 9, SIGKILL\) at \d\d:\d\d:03; last log lines "
                        r"attached", deaths[0].line), deaths[0].line
    assert deaths[0].log_tail.splitlines() == [f"{fakes['immich-server'].name} line {n}" for n in range(20, 40)]
    assert f"the {fakes['immich-server'].name} container's log" in deaths[0].details


def test_a_container_that_exits_on_its_own_is_named_with_its_code() -> None:
    sandbox, fakes = sandbox_with("database")
    fakes["database"].kill(1, "2026-12-04T14:46:05Z")
    assert [d.line.split(" at ")[0] for d in sandbox.dead_components()] == ["database exited with code 1"]


def test_nothing_is_asked_of_docker_before_the_run_is_up_or_once_it_closes() -> None:
    sandbox, fakes = sandbox_with("immich-server")
    sandbox._supervising = False
    fakes["immich-server"].kill(137, "2026-12-04T14:46:03Z")
    assert sandbox.dead_components() == [] and fakes["immich-server"].reloads == 0
    sandbox._supervising, sandbox._closed = True, True
    assert sandbox.dead_components() == []
