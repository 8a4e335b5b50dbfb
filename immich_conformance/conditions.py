"""Named conditions to wait for (``procs.wait_until``, ``ManagedProcess.wait_ready``), as e2e-framework's
wait/conditions: each returns a probe, true once the condition holds. A probe may raise while what it asks about
starts (a refused connection): the wait counts that as "not yet" and names the last error if it times out."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from .procs import LOOPBACK, port_open
from .trust_store import system_trust

if TYPE_CHECKING:
    from .kube import Kube

Condition = Callable[[], Any]


def port_answers(port: int, host: str = LOOPBACK) -> Condition:
    """A TCP connection to ``host:port`` is accepted."""
    return lambda: port_open(port, host)


def ports_answer(*ports: int, host: str = LOOPBACK) -> Condition:
    """A TCP connection to each of ``ports`` on ``host`` is accepted."""
    return lambda: all(port_open(port, host) for port in ports)


def url_answers_ok(url: str, *, timeout: float = 1.0) -> Condition:
    """A GET of ``url`` is answered 200."""
    return lambda: httpx.get(url, timeout=timeout, verify=system_trust()).status_code == 200


def files_gone(paths: Iterable[Path]) -> Condition:
    """None of ``paths`` exists any more."""
    files = list(paths)
    return lambda: not any(path.exists() for path in files)


def pods_ready(kube: Kube, selector: Mapping[str, str], *, since: float = 0.0) -> Condition:
    """A pod matching ``selector``, created after ``since``, is Ready (the Ready pods, a truthy list)."""
    return lambda: kube.ready_pods(dict(selector), since=since)


def pods_gone(kube: Kube, selector: Mapping[str, str]) -> Condition:
    """No pod matching ``selector`` exists (terminating ones count as still there)."""
    return lambda: not kube.items("pods", ",".join(f"{k}={v}" for k, v in selector.items()))


def connection_opens(kube: Kube, source: str, service: str, port: int, *, opens: bool = True) -> Condition:
    """A TCP connection from a pod of ``source`` to ``service:port`` opens (with ``opens=False``: it does not, as
    once a NetworkPolicy denies it)."""
    from .netpolicy.probes import connects  # here: the probes load the Kubernetes client, which starts do without

    return lambda: connects(kube, source, service, port) == opens


def all_of(*conditions: Condition) -> Condition:
    """Every one of ``conditions`` holds (asked in order, stopping at the first that does not)."""
    return lambda: all(condition() for condition in conditions)
