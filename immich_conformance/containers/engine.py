"""The Docker engine the containers runtime talks to, and the egress guard it needs before starting anything.

No engine answering is one message saying how to start one. Docker masquerades its networks to the outside, so a
container could reach past this machine: the runtime refuses to start unless DOCKER-USER drops everything forwarded
out of the uplink (each interface a default route leaves by), before any RETURN or ACCEPT in that chain. setup.sh
installs that rule; the message names it too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import docker

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
START_ENGINE = ("start one: as root, ./setup.sh (installs Debian's docker.io, adds the egress guard and starts "
                "dockerd), or `dockerd --ip-forward=false &`; or point DOCKER_HOST at a running engine")
ENGINE_TIMEOUT = 120


class ContainersError(RuntimeError):
    """The containers runtime cannot run as asked; the message (one line) says what is wrong and how to fix it."""


def engine_address() -> str:
    return os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET


def connect() -> docker.DockerClient:
    """A client of the engine at DOCKER_HOST (or the local socket) that answered a ping."""
    import docker
    from docker.errors import DockerException

    try:
        client = docker.from_env(timeout=ENGINE_TIMEOUT)
        client.ping()
    except DockerException as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ContainersError(f"no Docker engine answers at {engine_address()} ({one_line(reason)}): "
                              f"{START_ENGINE}") from None
    return client


def one_line(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def uplinks() -> list[str]:
    """The interfaces this machine's IPv4 default routes leave by (none: nothing leaves it). The runtime's network
    has no IPv6, so its containers can only send IPv4."""
    try:
        done = subprocess.run(["ip", "-4", "-o", "route", "show", "default"], capture_output=True, text=True,
                              timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ContainersError(f"cannot read the default route (ip route: {exc}); install iproute2") from None
    words = done.stdout.split()
    return sorted({words[i + 1] for i, word in enumerate(words[:-1]) if word == "dev"})


def guard_rule(uplink: str) -> list[str]:
    return ["-o", uplink, "-j", "DROP"]


def guard_fix(missing: list[str]) -> str:
    rules = "; ".join(f"iptables -I DOCKER-USER 1 {' '.join(guard_rule(u))}" for u in missing)
    return f"as root: {rules} (./setup.sh adds it)"


def egress_guard_problem() -> str | None:
    """None when DOCKER-USER drops what containers send out of every uplink; else what is missing and the fix."""
    links = uplinks()
    if not links:
        return None
    if shutil.which("iptables") is None:
        return ("iptables is missing: the egress guard cannot be checked (apt-get install iptables); then "
                f"{guard_fix(links)}")
    try:
        done = subprocess.run(["iptables", "-w", "-S", "DOCKER-USER"], capture_output=True, text=True, timeout=30,
                              check=False)
    except subprocess.TimeoutExpired:
        return "iptables did not answer within 30 s: the egress guard cannot be checked"
    if done.returncode != 0:
        if os.geteuid() != 0:
            return "reading the egress guard (iptables) needs root: run as root"
        return (f"the DOCKER-USER chain is missing ({one_line(done.stderr.strip())}): the engine does not manage "
                f"iptables, or is not local; {guard_fix(links)}")
    rules = [line.split()[2:] for line in done.stdout.splitlines() if line.startswith("-A DOCKER-USER ")]
    missing = []
    for link in links:
        for rule in rules:
            if rule == guard_rule(link):
                break
            if rule[-2:] in (["-j", "RETURN"], ["-j", "ACCEPT"]):
                missing.append(link)
                break
        else:
            missing.append(link)
    if missing:
        return (f"no egress guard: DOCKER-USER does not drop what containers send out of {', '.join(missing)} "
                f"(before its first RETURN or ACCEPT), so they could reach past this machine; {guard_fix(missing)}")
    return None


def require_egress_guard() -> None:
    problem = egress_guard_problem()
    if problem:
        raise ContainersError(f"refusing to start containers: {problem}")


def engine_for_run(progress: Callable[[str], None]) -> docker.DockerClient:
    """The engine, ready for a run that removes what it makes itself (no reaper container: its image cannot be
    pulled here): as root, the egress guard in place, what earlier runs left behind when killed removed."""
    from testcontainers.core.config import testcontainers_config

    from . import cleanup

    os.environ["TESTCONTAINERS_RYUK_DISABLED"] = "true"
    testcontainers_config.ryuk_disabled = True
    client = connect()
    try:
        if os.geteuid() != 0:
            raise ContainersError("--runtime containers runs as root: it hands Postgres's data folder to the "
                                  "database's user as on the node, and checks the egress guard (iptables)")
        require_egress_guard()
        swept = cleanup.sweep_dead_runs(client)
        stale_rules = cleanup.remove_stale_bridge_rules()
    except BaseException:
        client.close()
        raise
    if swept:
        progress(f"removed what {len(swept)} earlier run(s) left behind (their process was gone)")
    if stale_rules:
        progress(f"removed {len(stale_rules)} iptables rule(s) naming the bridges of earlier runs' networks, gone "
                 "since (written back by another program that rewrote the whole table meanwhile, e.g. kube-router)")
    return client
