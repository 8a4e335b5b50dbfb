"""The sandbox chooses free ports and binds them later: when another process takes one in between, it starts again on
new ports (a bounded number of times) and says so; when every attempt loses a port, one line says what happened."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from immich_conformance import procs
from immich_conformance.targets import sandbox as sandbox_module
from immich_conformance.targets.sandbox import PORT_ATTEMPTS, Sandbox, SandboxError


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port held by another listener for the whole test."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind((procs.LOOPBACK, 0))
        held.listen()
        yield held.getsockname()[1]


def test_a_port_taken_before_its_component_binds_it_is_replaced(monkeypatch, taken_port, tmp_path) -> None:
    calls: list[int] = []

    def first_port_taken(count: int, host: str = procs.LOOPBACK) -> list[int]:
        calls.append(1)
        return [taken_port, *procs.free_ports(count - 1, host)] if len(calls) == 1 else procs.free_ports(count, host)

    monkeypatch.setattr(sandbox_module, "free_ports", first_port_taken)
    notes: list[str] = []
    with Sandbox(tmp_path / "sb", progress=notes.append) as sandbox:
        assert httpx.get(f"{sandbox.lan.url}/api/server/ping", timeout=5).status_code == 200
        assert sandbox.external.url != f"http://{procs.LOOPBACK}:{taken_port}"
    retries = [n for n in notes if "taken by another process" in n]
    assert len(retries) == 1, notes
    assert "address already in use" in retries[0].lower() and f"attempt 2 of {PORT_ATTEMPTS}" in retries[0]


def test_every_attempt_losing_a_port_says_so(monkeypatch, taken_port, tmp_path) -> None:
    monkeypatch.setattr(sandbox_module, "free_ports",
                        lambda count, host=procs.LOOPBACK: [taken_port, *procs.free_ports(count - 1, host)])
    notes: list[str] = []
    with pytest.raises(SandboxError) as raised:
        Sandbox(tmp_path / "sb", progress=notes.append).start()
    message = str(raised.value)
    assert "another process kept taking the ports" in message and "choose a free port" not in message
    assert len([n for n in notes if "taken by another process" in n]) == PORT_ATTEMPTS - 1
    assert not (tmp_path / "sb").exists()
