"""When a run's containers are Ready: each Deployment's readiness probe (HTTP, TCP or exec, as the kubelet runs it)
and each relay's port answering, then every published port answering on 127.0.0.1. A container that stops while the
run waits ends the wait at once, with its log."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable

import httpx

from ..conditions import port_answers
from ..procs import GiveUp, WaitTimeout, wait_until
from .container_set import ContainerSet, relay_name
from .container_spec import Probe, StackSpec
from .engine import ContainersError

READY_TIMEOUT = 180.0
"""At most this long for every container to become Ready (the stack's startup budgets are longer: a broken start
should not hold the run for ten minutes)."""
PUBLISHED_TIMEOUT = 10.0


class ContainerStopped(GiveUp, ContainersError):
    """A container stopped while the run waited for it to become Ready (the message ends with its log)."""


def probes(spec: StackSpec) -> dict[str, Probe]:
    """Each container's readiness probe (component -> probe); a relay's: its first port answering."""
    found = {name: container.readiness for name, container in spec.containers.items() if container.readiness}
    for relay in spec.relays:
        found[relay_name(relay)] = Probe("tcp", budget=READY_TIMEOUT, port=relay.routes[0][0])
    return found


def probe_once(containers: ContainerSet, name: str, probe: Probe) -> bool:
    address = containers.addresses[name]
    if probe.kind == "http":
        url = f"{probe.scheme.lower()}://{address}:{probe.port}{probe.path}"
        with contextlib.suppress(httpx.HTTPError):
            status = httpx.get(url, headers=dict(probe.headers), timeout=probe.timeout, verify=False).status_code
            return 200 <= status < 400
        return False
    if probe.kind == "tcp":
        with contextlib.suppress(OSError), socket.create_connection((address, probe.port), timeout=probe.timeout):
            return True
        return False
    result = containers.running[name].exec_run(list(probe.command))
    return result.exit_code == 0


def check_running(containers: ContainerSet, name: str) -> None:
    """Raise ContainerStopped, with the log's end, when the container is not running."""
    wrapped = containers.running[name]
    wrapped.reload()
    if wrapped.status != "running":
        code = wrapped.attrs["State"].get("ExitCode")
        tail = wrapped.logs(tail=30).decode(errors="replace").strip()
        raise ContainerStopped(f"the {name} container stopped (exit code {code}) before it was Ready; its log "
                               f"ends:\n{tail}")


def wait_ready(containers: ContainerSet, spec: StackSpec, progress: Callable[[str], None],
               names: set[str] | None = None) -> None:
    """Wait until every container (of ``names``, when given) is Ready; fail as soon as one stops."""
    expected = {n: p for n, p in probes(spec).items() if names is None or n in names}
    waiting = dict(expected)
    began = time.monotonic()

    def all_ready() -> bool:
        for name, probe in list(waiting.items()):
            check_running(containers, name)
            if probe_once(containers, name, probe):
                progress(f"{name} Ready ({probe.describe()}) after {time.monotonic() - began:.1f}s")
                del waiting[name]
        return not waiting

    timeout = min(max(p.budget for p in expected.values()), READY_TIMEOUT) if expected else 1.0
    try:
        wait_until(all_ready, timeout=timeout, interval=0.2, what="every container Ready")
    except WaitTimeout:
        details = "; ".join(f"{n}: {p.describe()}" for n, p in waiting.items())
        raise ContainersError(f"not Ready within {timeout:.0f}s: {details} (run with --keep-sandbox to keep "
                              "their logs in the work folder)") from None
    for name in containers.running:
        if name not in expected and (names is None or name in names):
            check_running(containers, name)
    for (name, _), host_port in containers.host_ports.items():
        if names is not None and name not in names:
            continue
        wait_until(port_answers(host_port), timeout=PUBLISHED_TIMEOUT, what=f"127.0.0.1:{host_port} to answer")
