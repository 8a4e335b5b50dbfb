"""What a containers run leaves behind: nothing. Every container and network it makes carries its labels.

* ``remove_run`` removes a run's containers (with their anonymous volumes), networks and volumes by its label;
* ``sweep_dead_runs`` removes the runs of this machine whose process is gone (killed outright: no finalizer ran);
* ``remove_stale_bridge_rules`` removes the iptables rules that still name a bridge of a run's network once the
  network is gone (each run's bridge is named ``icbr-`` and its id): Docker removes them with the network, but
  kube-router's policy controller (the offline cluster, running at the same time) writes back the whole filter table
  it read a moment before, with the rules Docker removed in between;
* ``TerminationAsInterrupt`` turns SIGTERM and SIGHUP into KeyboardInterrupt while a run is up, so the finalizers
  run as on Ctrl-C; ``interrupts_deferred`` keeps a second Ctrl-C from cutting a cleanup short.

There is no reaper container (``TESTCONTAINERS_RYUK_DISABLED=true``): its image cannot be pulled here.
"""

from __future__ import annotations

import contextlib
import re
import shlex
import shutil
import signal
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from ..procs import process_alive, process_identity

if TYPE_CHECKING:
    import docker

LABEL_PREFIX = "org.immich-conformance"
RUNTIME_LABEL = f"{LABEL_PREFIX}.runtime"
RUN_LABEL = f"{LABEL_PREFIX}.run"
PROCESS_LABEL = f"{LABEL_PREFIX}.process"
HOST_LABEL = f"{LABEL_PREFIX}.host"
DEPLOYMENT_LABEL = f"{LABEL_PREFIX}.deployment"
RUNTIME = "containers"
REMOVE_WORKERS = 4
BRIDGE_PREFIX = "icbr-"  # a run's bridge: this and the first 10 characters of its id (an interface name holds 15)
BRIDGE_TABLES = ("filter", "nat")  # where Docker writes a network's rules
_RUN_BRIDGE = re.compile(rf"(?<![\w-])({BRIDGE_PREFIX}[0-9a-f]{{10}})(?![\w-])")


def run_labels(run_id: str) -> dict[str, str]:
    return {RUNTIME_LABEL: RUNTIME, RUN_LABEL: run_id, PROCESS_LABEL: process_identity(),
            HOST_LABEL: socket.gethostname()}


@dataclass
class Leftovers:
    containers: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.containers or self.networks or self.volumes)

    def describe(self) -> str:
        parts = [f"{kind}: {', '.join(names)}" for kind, names in
                 (("containers", self.containers), ("networks", self.networks), ("volumes", self.volumes)) if names]
        return "; ".join(parts) or "nothing"


def leftovers(client: docker.DockerClient, run_id: str | None = None) -> Leftovers:
    """The containers, networks and volumes of run ``run_id`` (of every containers run when None)."""
    selector = f"{RUN_LABEL}={run_id}" if run_id else f"{RUNTIME_LABEL}={RUNTIME}"
    filters = {"label": selector}
    return Leftovers(
        containers=sorted(c.name for c in client.containers.list(all=True, filters=filters)),
        networks=sorted(n.name for n in client.networks.list(filters=filters)),
        volumes=sorted(v.name for v in client.volumes.list(filters=filters)),
    )


def remove_run(client: docker.DockerClient, run_id: str, volumes: list[str] | None = None) -> list[str]:
    """Remove everything of run ``run_id`` (and the named anonymous ``volumes`` its containers had); what failed."""
    from docker.errors import DockerException, NotFound

    problems = []
    filters = {"label": f"{RUN_LABEL}={run_id}"}
    steps = [
        ("container", lambda: client.containers.list(all=True, filters=filters),
         lambda c: c.remove(force=True, v=True)),
        ("network", lambda: client.networks.list(filters=filters), lambda n: n.remove()),
        ("volume", lambda: client.volumes.list(filters=filters), lambda v: v.remove(force=True)),
    ]
    for kind, listing, remove in steps:
        try:
            found = listing()
        except DockerException as exc:
            problems.append(f"listing the run's {kind}s: {exc}")
            continue

        def remove_one(item: Any, kind: str = kind, remove: Callable[[Any], None] = remove) -> str | None:
            try:
                remove(item)
            except NotFound:
                pass
            except DockerException as exc:
                return f"removing {kind} {item.name}: {exc}"
            return None

        # Containers go in parallel (each is a kill and a removal); the network only once they are gone.
        with ThreadPoolExecutor(max_workers=REMOVE_WORKERS) as pool:
            problems += [p for p in pool.map(remove_one, found) if p]
    for name in volumes or []:
        try:
            client.volumes.get(name).remove(force=True)
        except NotFound:
            pass
        except DockerException as exc:
            problems.append(f"removing volume {name}: {exc}")
    return problems


def bridge_name(run_id: str) -> str:
    return f"{BRIDGE_PREFIX}{run_id[:10]}"


def remove_stale_bridge_rules(tables: tuple[str, ...] = BRIDGE_TABLES) -> list[str]:
    """Remove the iptables rules naming a run's bridge (``bridge_name``) that no longer exists; the rules removed."""
    removed: list[str] = []
    if shutil.which("iptables-save") is None:
        return removed
    for table in tables:
        saved = subprocess.run(["iptables-save", "-t", table], capture_output=True, text=True, check=False)
        for line in saved.stdout.splitlines():
            bridges = set(_RUN_BRIDGE.findall(line))
            if not line.startswith("-A ") or not bridges or any(Path("/sys/class/net", b).exists() for b in bridges):
                continue
            rule = shlex.split(line)[1:]
            deleted = subprocess.run(["iptables", "-w", "-t", table, "-D", *rule], capture_output=True, check=False)
            if deleted.returncode == 0:
                removed.append(f"-t {table} {line}")
    return removed


def sweep_dead_runs(client: docker.DockerClient) -> list[str]:
    """Remove the runs of this machine whose process has ended; their ids."""
    here = socket.gethostname()
    filters = {"label": f"{RUNTIME_LABEL}={RUNTIME}"}
    owners: dict[str, str] = {}
    for item in [*client.containers.list(all=True, filters=filters), *client.networks.list(filters=filters)]:
        labels = item.attrs.get("Labels") or (item.attrs.get("Config") or {}).get("Labels") or {}
        if labels.get(HOST_LABEL) == here and labels.get(RUN_LABEL):
            owners[labels[RUN_LABEL]] = labels.get(PROCESS_LABEL, "")
    dead = [run for run, owner in owners.items() if not process_alive(owner)]
    for run in dead:
        remove_run(client, run)
    return dead


class _Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where the program is, so that finalizers run as on Ctrl-C."""


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise _Terminated(f"signal {signal.Signals(signum).name}")


class TerminationAsInterrupt:
    """While installed, SIGTERM and SIGHUP raise KeyboardInterrupt (main thread only; elsewhere nothing changes)."""

    SIGNALS = (signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self._previous: dict[int, object] = {}

    def install(self) -> None:
        if self._previous or threading.current_thread() is not threading.main_thread():
            return
        self._previous = {sig: signal.getsignal(sig) for sig in self.SIGNALS}
        for sig in self.SIGNALS:
            signal.signal(sig, _raise_interrupt)

    def restore(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous = {}


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP wait until the block ends (main thread only), then act once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.getsignal(sig) for sig in signals}
    for sig in signals:
        signal.signal(sig, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if received:
            signal.raise_signal(received[0])
