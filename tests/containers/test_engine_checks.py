"""Before any container starts: an engine that answers (else one message saying how to start one), and the egress
guard in DOCKER-USER (else a refusal naming the rule)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import uuid
from pathlib import Path

import pytest

from immich_conformance.containers import cleanup, engine
from immich_conformance.containers.docker_images import prepare_images
from immich_conformance.images.recipes import image_refs

from .conftest import leftovers_of, run_suite

OUTSIDE = "203.0.113.10"  # TEST-NET-3: a documentation address outside the machine


def _shim(folder: Path, name: str, script: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)


@pytest.fixture
def fake_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``ip`` with one default route by eth9, and ``iptables`` printing DOCKER-USER from ``rules`` (a file)."""
    _shim(tmp_path, "ip", 'echo "default via 192.0.2.1 dev eth9 proto static"')
    rules = tmp_path / "rules"
    _shim(tmp_path, "iptables", f'[ -s "{rules}" ] || {{ echo "iptables: No chain/target/match" >&2; exit 1; }}\n'
                                f'cat "{rules}"')
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.setattr(os, "geteuid", lambda: 0)  # the fake iptables answers whoever asks
    return rules


def test_no_engine_is_one_message_saying_how_to_start_one(tmp_path: Path) -> None:
    dead = tmp_path / "docker.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(dead))  # bound, never listening: connections are refused
    result = run_suite("--runtime", "containers", "--images", "local", "-k", "lan",
                       env={"DOCKER_HOST": f"unix://{dead}"}, timeout=120)
    output = result.output
    lines = [line for line in output.splitlines() if "no Docker engine answers" in line]
    assert result.returncode == 4, output[-2000:]
    assert len(lines) == 1, output[-2000:]
    assert f"unix://{dead}" in lines[0] and "./setup.sh" in lines[0] and "dockerd" in lines[0] \
        and "DOCKER_HOST" in lines[0]
    assert "Traceback" not in output


def test_guard_check_wants_a_drop_out_of_the_uplink_before_any_return(fake_tools: Path) -> None:
    rules = fake_tools
    assert engine.uplinks() == ["eth9"]
    problem = engine.egress_guard_problem()
    assert problem and "DOCKER-USER chain is missing" in problem and "iptables -I DOCKER-USER 1 -o eth9 -j DROP" \
        in problem
    rules.write_text("-N DOCKER-USER\n-A DOCKER-USER -j RETURN\n")
    problem = engine.egress_guard_problem()
    assert problem and "out of eth9" in problem and "iptables -I DOCKER-USER 1 -o eth9 -j DROP" in problem
    rules.write_text("-N DOCKER-USER\n-A DOCKER-USER -j RETURN\n-A DOCKER-USER -o eth9 -j DROP\n")
    assert engine.egress_guard_problem() is not None  # after the RETURN it never applies
    rules.write_text("-N DOCKER-USER\n-A DOCKER-USER -o eth0 -j DROP\n-A DOCKER-USER -j RETURN\n")
    assert engine.egress_guard_problem() is not None  # another interface
    rules.write_text("-N DOCKER-USER\n-A DOCKER-USER -o eth9 -j DROP\n-A DOCKER-USER -j RETURN\n")
    assert engine.egress_guard_problem() is None


@pytest.mark.slow
def test_the_run_refuses_to_start_without_the_guard(docker_engine: None, tmp_path: Path) -> None:
    _shim(tmp_path, "iptables", 'printf -- "-N DOCKER-USER\\n-A DOCKER-USER -j RETURN\\n"')
    result = run_suite("--runtime", "containers", "--images", "local", "-k", "lan",
                       env={"PATH": f"{tmp_path}:{os.environ['PATH']}"}, timeout=120)
    output = result.output
    lines = [line for line in output.splitlines() if "refusing to start containers" in line]
    assert result.returncode == 4, output[-2000:]
    assert len(lines) == 1 and re.search(r"iptables -I DOCKER-USER 1 -o \S+ -j DROP", lines[0]), output[-2000:]
    client = engine.connect()
    try:
        assert not leftovers_of(client, result.pid), "a refused run left something behind"
    finally:
        client.close()


def _drop_count(uplink: str) -> int:
    listing = subprocess.run(["iptables", "-w", "-L", "DOCKER-USER", "-v", "-x", "-n"], capture_output=True,
                             text=True, check=True).stdout
    for line in listing.splitlines():
        words = line.split()
        if len(words) >= 7 and words[2] == "DROP" and words[6] == uplink:
            return int(words[0])
    raise AssertionError(f"no DROP rule out of {uplink} in DOCKER-USER:\n{listing}")


@pytest.mark.slow
def test_a_container_on_a_private_network_cannot_reach_outside(docker_engine: None) -> None:
    client = engine.connect()
    run_id = f"egress-{uuid.uuid4().hex[:8]}"
    labels = cleanup.run_labels(run_id)
    try:
        image = prepare_images(client, [image_refs()["redis"]], lambda message: None)[image_refs()["redis"]]
        network = client.networks.create(f"immich-conformance-{run_id}", driver="bridge", labels=labels)
        uplinks = engine.uplinks()
        forwarding = Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() == "1"
        # Another firewall on the machine (the offline cluster's kube-router, run beside this test by pytest -n)
        # may rewrite the filter table while the probe runs, which resets every counter: a reset can hide the
        # probe's packets (down to exactly the count before). Until the guard is seen counting, the probe is tried
        # again, up to three times; each attempt must fail to connect.
        for _attempt in range(3 if forwarding and uplinks else 1):
            before = {u: _drop_count(u) for u in uplinks}
            probe = client.containers.run(
                image, entrypoint=["timeout", "5", "bash", "-c", f"exec 3<>/dev/tcp/{OUTSIDE}/80"],
                network=network.name, labels=labels, detach=True, user="10001:10001", cap_drop=["ALL"])
            status = probe.wait(timeout=30)
            probe.remove()
            assert status["StatusCode"] != 0, "a connection to an outside address succeeded"
            after = {u: _drop_count(u) for u in uplinks}
            if any(after[u] > before[u] for u in uplinks):
                break
        if forwarding and uplinks:  # without forwarding the kernel drops it before the guard sees it
            assert any(after[u] > before[u] for u in uplinks), "the guard did not see the attempt"
    finally:
        cleanup.remove_run(client, run_id)
        assert not cleanup.leftovers(client, run_id)
        client.close()
