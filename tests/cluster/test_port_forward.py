"""The cluster target's port-forward to the origin proxy: a local port chosen, then bound by kubectl. When another
process takes it first, the forward starts again on a new port. No cluster here: a fake kubectl that binds the port
it is given (and fails as kubectl does when it cannot)."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from immich_conformance.procs import LOOPBACK, free_port
from immich_conformance.targets import port_forward as port_forward_module
from immich_conformance.targets.cluster import ClusterSetupError, ClusterTarget
from immich_conformance.targets.port_forward import PORT_ATTEMPTS

FAKE_KUBECTL = '''
import socket, sys, time
local = next(a for a in sys.argv if a.endswith(":8080")).split(":")[0]
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(local)))
except OSError as exc:
    print(f"Unable to listen on port {local}: Listeners failed to create with the following errors: [unable to "
          f"create listener: Error listen tcp4 127.0.0.1:{local}: bind: address already in use]", flush=True)
    print(f"error: unable to listen on any of the requested ports: [{{{local} 8080}}]", flush=True)
    sys.exit(1)
s.listen()
print(f"Forwarding from 127.0.0.1:{local} -> 8080", flush=True)
time.sleep(600)
'''


class FakeKube:
    def __init__(self, script: Path) -> None:
        self.script = script

    def argv(self, *args: str, namespaced: bool = True) -> list[str]:
        return [sys.executable, str(self.script), *args]


@pytest.fixture
def held() -> Iterator[socket.socket]:
    """A port another process took: bound and listening, so it even answers a connection."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        s.listen()
        yield s


@pytest.fixture
def target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ClusterTarget, list[str]]]:
    script = tmp_path / "kubectl.py"
    script.write_text(FAKE_KUBECTL)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    said: list[str] = []
    cluster = ClusterTarget(kubeconfig=None, offline=False, progress=said.append)
    cluster.kube = FakeKube(script)  # type: ignore[assignment]
    cluster.public_hostname = "photos.example.test"
    try:
        yield cluster, said
    finally:
        cluster.close()


def test_a_port_taken_before_kubectl_binds_it_is_forwarded_again_on_a_new_port(
        target: tuple[ClusterTarget, list[str]], held: socket.socket, monkeypatch: pytest.MonkeyPatch) -> None:
    cluster, said = target
    taken = held.getsockname()[1]
    chosen = iter([taken])
    monkeypatch.setattr(port_forward_module, "free_port", lambda: next(chosen, None) or free_port())
    origin = cluster.origin
    port = int(origin.url.rsplit(":", 1)[1])
    assert port != taken, "the forward claims the port another process holds"
    assert cluster._port_forward is not None and cluster._port_forward.process.alive()
    assert f"Forwarding from 127.0.0.1:{port}" in cluster._port_forward.process.log_since(0)
    assert len(said) == 1 and f"port {taken} was taken by another process" in said[0], said
    assert origin.headers == {"Host": "photos.example.test"}


def test_a_port_taken_every_time_stops_with_one_line(target: tuple[ClusterTarget, list[str]], held: socket.socket,
                                                     monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cluster, said = target
    taken = held.getsockname()[1]
    monkeypatch.setattr(port_forward_module, "free_port", lambda: taken)
    with pytest.raises(ClusterSetupError) as raised:
        cluster.origin  # noqa: B018 - the property starts the forward
    message = str(raised.value)
    assert f"found its local port taken {PORT_ATTEMPTS} times" in message and "\n" not in message, message
    assert "address already in use" in message
    assert len(said) == PORT_ATTEMPTS - 1
    assert cluster._port_forward is None, "a failed forward is left running"
    assert _logs_left(tmp_path) == [], "the failed forwards' logs are left behind"


def test_a_forward_that_fails_for_another_reason_is_not_retried(target: tuple[ClusterTarget, list[str]],
                                                                tmp_path: Path) -> None:
    cluster, said = target
    broken = tmp_path / "broken-kubectl.py"
    broken.write_text('import sys\nprint("error: services \\"origin-proxy\\" not found")\nsys.exit(1)\n')
    cluster.kube = FakeKube(broken)  # type: ignore[assignment]
    with pytest.raises(Exception, match="origin-proxy\" not found") as raised:
        cluster.origin  # noqa: B018
    assert not isinstance(raised.value, ClusterSetupError)
    assert said == [], "a failure that is not a taken port was retried"
    assert "last lines of" in str(raised.value), "kubectl's own words are not in the message"
    assert _logs_left(tmp_path) == [], "the failed forward's log is left behind"


def test_a_closed_target_leaves_no_forward_log_behind(target: tuple[ClusterTarget, list[str]], tmp_path: Path) -> None:
    cluster, _ = target
    cluster.origin  # noqa: B018
    assert len(_logs_left(tmp_path)) == 1, "the forward's log is not where TMPDIR says"
    cluster.close()
    assert _logs_left(tmp_path) == [], "closing the target left the forward's log behind"


def _logs_left(folder: Path) -> list[Path]:
    return sorted(folder.glob("immich-conformance-port-forward-*"))
