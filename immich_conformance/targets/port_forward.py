"""``kubectl port-forward`` to a Service: a local port is chosen here, then bound by kubectl, so when another
process takes it first the forward starts again on a new port. kubectl's output goes to a log in a folder of the
forward's own (``run_folders``), removed when the forward stops, or by a later forward when the run was killed.

kubectl rather than the ``kubernetes`` client's port-forward: the client gives one socket per connection through its
websocket and no local listener, while every HTTP client of the suite needs a plain local port to connect to."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from .. import run_folders
from ..kube import Kube
from ..procs import ManagedProcess, ProcessDied, WaitTimeout, free_port, port_open, port_taken

PORT_ATTEMPTS = 3  # port-forwards started on new ports when another process takes the one chosen
PORT_FORWARD_TIMEOUT = 30.0
LOG_PREFIX = "immich-conformance-port-forward-"


class PortsTaken(RuntimeError):
    """Every local port chosen was taken before kubectl bound it; the message is one line."""


@dataclass
class PortForward:
    """A running ``kubectl port-forward`` and the local port it listens on."""

    process: ManagedProcess
    port: int

    def stop(self) -> None:
        self.process.stop()
        shutil.rmtree(self.process.log_path.parent, ignore_errors=True)


def forward_service(kube: Kube, service: str, remote_port: int, progress: Callable[[str], None]) -> PortForward:
    """A running ``kubectl port-forward`` to ``service``'s ``remote_port``. PortsTaken when the port was taken
    ``PORT_ATTEMPTS`` times; any other failure (ProcessDied, WaitTimeout, their messages holding kubectl's last lines)
    as it came."""
    for attempt in range(1, PORT_ATTEMPTS + 1):
        port = free_port()
        forward = PortForward(ManagedProcess(
            f"port-forward-{service}",
            kube.argv("port-forward", f"service/{service}", f"{port}:{remote_port}", "--address", "127.0.0.1"),
            log_path=_log_file(service),
        ), port)
        forward.process.start()
        try:
            forward.process.wait_ready(partial(_forwarding, forward.process, port), timeout=PORT_FORWARD_TIMEOUT)
            return forward
        except (ProcessDied, WaitTimeout):
            log = forward.process.log_since(0)
            forward.stop()
            taken = next((line.strip() for line in log.splitlines() if port_taken(line)), None)
            if taken is None:
                raise
            if attempt == PORT_ATTEMPTS:
                raise PortsTaken(
                    f"kubectl port-forward to {service} found its local port taken {PORT_ATTEMPTS} times (last: "
                    f"{taken}); find what opens many loopback ports on this machine, or run again once it is done"
                ) from None
            progress(f"port {port} was taken by another process before kubectl port-forward bound it; forwarding "
                     f"again on a new port (attempt {attempt + 1} of {PORT_ATTEMPTS})")
    raise AssertionError("PORT_ATTEMPTS must be at least 1")


def _log_file(service: str) -> Path:
    return run_folders.fresh(f"{LOG_PREFIX}{service}-", _log_parent()) / "kubectl.log"


def _log_parent() -> Path | None:
    return Path(os.environ["TMPDIR"]) if os.environ.get("TMPDIR") else None


def _forwarding(forward: ManagedProcess, port: int) -> bool:
    """kubectl's own "Forwarding from" line for ``port``, not just an open port: a process that took the port answers
    on it too."""
    return port_open(port) and f"Forwarding from 127.0.0.1:{port}" in forward.log_since(0)
