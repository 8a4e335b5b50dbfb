"""A containers run removes every container, network and volume it made: after a run, a failed start, Ctrl-C (at
start-up and during the scenarios), SIGTERM, and a pull that fails. Listed by the labels the run sets, before and
after."""

from __future__ import annotations

import dataclasses
import signal
import subprocess
import threading
import uuid
from pathlib import Path

import docker
import httpx
import pytest

from immich_conformance.containers import cleanup
from immich_conformance.containers.container_spec import ContainerSpec
from immich_conformance.containers.engine import ContainersError
from immich_conformance.procs import free_port, wait_until
from immich_conformance.targets.containers import ContainersSandbox

from .conftest import leftovers_of, run_suite, start_suite, work_folders

pytestmark = pytest.mark.slow


def test_a_run_leaves_nothing_behind(client: docker.DockerClient) -> None:
    before = cleanup.leftovers(client)
    volumes_before = {v.name for v in client.volumes.list()}
    target = ContainersSandbox(images="local", progress=lambda message: print(f"[containers] {message}"))
    try:
        target.start()
        assert target.spec is not None and target.workdir is not None
        during = cleanup.leftovers(client, target.run_id)
        assert len(during.containers) == len(target.spec.containers) + len(target.spec.relays), during.describe()
        assert during.networks == [f"immich-conformance-{target.run_id}"]
        bridge = client.networks.get(during.networks[0]).attrs["Options"].get("com.docker.network.bridge.name")
        assert bridge == cleanup.bridge_name(target.run_id), "the run's bridge does not carry the run's name"
        assert Path("/sys/class/net", bridge).exists()
        for container in client.containers.list(filters={"label": f"{cleanup.RUN_LABEL}={target.run_id}"}):
            for bindings in (container.attrs["NetworkSettings"]["Ports"] or {}).values():
                assert all(b["HostIp"] == "127.0.0.1" for b in bindings or []), (container.name, bindings)
        assert httpx.get(f"{target.lan.url}/api/server/ping", timeout=10).status_code == 200
        workdir, run_id = target.workdir, target.run_id
    finally:
        target.close()
    assert not cleanup.leftovers(client, run_id)
    assert cleanup.leftovers(client) == before
    assert {v.name for v in client.volumes.list()} <= volumes_before, "the run left a volume behind"
    assert not workdir.exists()
    assert not Path("/sys/class/net", bridge).exists(), "the run's bridge is left"


class _BrokenServer(ContainersSandbox):
    """immich-server exits at once: the start fails half way, after the other containers started."""

    def _start_one(self, spec: ContainerSpec) -> None:
        if spec.deployment == "immich-server":
            spec = dataclasses.replace(spec, entrypoint=["/bin/sh", "-c", "echo broken on purpose; exit 3"],
                                       command=None)
        super()._start_one(spec)


def test_a_failed_start_leaves_nothing_behind(client: docker.DockerClient) -> None:
    target = _BrokenServer(images="local")
    with pytest.raises(ContainersError, match=r"immich-server container stopped \(exit code 3\)") as failure:
        target.start()
    assert "broken on purpose" in str(failure.value)
    assert not cleanup.leftovers(client, target.run_id)
    assert target.workdir is not None and not target.workdir.exists()


class _Output:
    """A process's output lines, read as they come."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert process.stdout is not None
        self._thread = threading.Thread(target=lambda: self.lines.extend(process.stdout), daemon=True)  # type: ignore
        self._thread.start()

    def text(self) -> str:
        return "".join(self.lines)


def _interrupt(client: docker.DockerClient, sig: signal.Signals, when: str) -> None:
    process = start_suite("--runtime", "containers", "--images", "local", "-k", "lan or uploads", "-s")
    output = _Output(process)
    try:
        if when == "start-up":
            wait_until(lambda: leftovers_of(client, process.pid), timeout=120, interval=0.1,
                       what="the run's first container or network")
        else:
            wait_until(lambda: "containers ready" in output.text(), timeout=180, interval=0.2,
                       what="the containers Ready")
        process.send_signal(sig)
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = output.text()
    assert process.returncode != 0, text[-2000:]
    assert not leftovers_of(client, process.pid), text[-3000:]
    folders = work_folders(text)
    assert folders and not any(f.exists() for f in folders), (folders, text[-2000:])


def test_ctrl_c_at_start_up_leaves_nothing_behind(client: docker.DockerClient) -> None:
    _interrupt(client, signal.SIGINT, "start-up")


def test_ctrl_c_during_the_scenarios_leaves_nothing_behind(client: docker.DockerClient) -> None:
    _interrupt(client, signal.SIGINT, "scenarios")


def test_sigterm_during_the_scenarios_leaves_nothing_behind(client: docker.DockerClient) -> None:
    _interrupt(client, signal.SIGTERM, "scenarios")


def test_a_failed_pull_is_one_line_naming_the_local_images(client: docker.DockerClient) -> None:
    # A registry on a loopback port nobody listens on: the pull fails here, and nothing leaves the machine.
    mirror = f"127.0.0.1:{free_port()}"
    result = run_suite("--runtime", "containers", "--images", "pinned", "-k", "lan", "-s",
                       env={"IMMICH_CONFORMANCE_REGISTRY_MIRROR": mirror}, timeout=300)
    lines = [line for line in result.output.splitlines() if "cannot pull" in line]
    assert result.returncode == 4, result.output[-2000:]
    assert len(lines) == 1, result.output[-2000:]
    assert "ghcr.io/immich-app/" in lines[0] or "docker.io/" in lines[0]
    assert "--images local" in lines[0] and mirror in lines[0]
    assert "Traceback" not in result.output
    assert not leftovers_of(client, result.pid)
    folders = work_folders(result.output)
    assert folders and not any(f.exists() for f in folders)


def test_runs_whose_process_is_gone_are_swept_at_the_next_start(client: docker.DockerClient) -> None:
    dead, alive = f"dead-{uuid.uuid4().hex[:8]}", f"alive-{uuid.uuid4().hex[:8]}"
    # No process has this id (above the kernel's pid_max): the run it labels was killed without cleaning up.
    client.networks.create(f"immich-conformance-{dead}",
                           labels={**cleanup.run_labels(dead), cleanup.PROCESS_LABEL: "999999999:1"})
    client.networks.create(f"immich-conformance-{alive}", labels=cleanup.run_labels(alive))  # this process
    try:
        swept = cleanup.sweep_dead_runs(client)
        assert dead in swept and alive not in swept
        assert not cleanup.leftovers(client, dead)
        assert cleanup.leftovers(client, alive).networks == [f"immich-conformance-{alive}"]
    finally:
        for run in (dead, alive):
            cleanup.remove_run(client, run)
    assert not cleanup.leftovers(client, alive)
