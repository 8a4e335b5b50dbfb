"""What a run's containers show while it is up: their logs (since a moment, or whole into the work folder), their
states, and which of them stopped (a Death each: how, when Docker says, the log's last lines)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..targets.supervision import TAIL_LINES, Death, container_exit

if TYPE_CHECKING:
    from docker.models.containers import Container


def logs_since(containers: Mapping[str, Container], marks: Mapping[str, Any]) -> dict[str, str]:
    """Each container's log from its mark (a timestamp) on; the whole log without one."""
    out = {}
    for name, container in containers.items():
        since = marks.get(name)
        try:
            raw = container.logs(since=since) if since else container.logs()
        except Exception as exc:  # noqa: BLE001 - a log that cannot be read is shown as such
            raw = f"(cannot read the log: {exc})".encode()
        out[name] = raw.decode(errors="replace")
    return out


def save_logs(containers: Mapping[str, Container], folder: Path) -> None:
    """Each container's whole log as ``folder/<component>.log`` (what cannot be read is left out)."""
    folder.mkdir(exist_ok=True)
    for name, container in containers.items():
        with contextlib.suppress(Exception):
            (folder / f"{name}.log").write_bytes(container.logs())


def states(containers: Mapping[str, Container]) -> str:
    """One line per container: its status and exit code, as Docker says now."""
    lines = []
    for name, wrapped in containers.items():
        with contextlib.suppress(Exception):
            wrapped.reload()
            lines.append(f"{name}: {wrapped.status} (exit code {wrapped.attrs['State'].get('ExitCode')})")
    return "\n".join(lines)


def stopped(watched: Mapping[str, Container]) -> dict[str, Death]:
    """Each of ``watched`` that is no longer running or about to (removed behind the run's back, too)."""
    from docker.errors import NotFound

    deaths = {}
    for name, wrapped in watched.items():
        try:
            wrapped.reload()
            if wrapped.status in ("created", "running", "restarting"):
                continue
            state = wrapped.attrs["State"]
            tail = wrapped.logs(tail=TAIL_LINES).decode(errors="replace")
        except NotFound:  # removed behind the run's back
            state, tail = {}, ""
        how = "was removed" if not state else \
            container_exit(int(state.get("ExitCode") or 0), bool(state.get("OOMKilled")))
        deaths[name] = Death(name, how, finished_at(state), f"the {wrapped.name} container's log", tail)
    return deaths


def finished_at(state: dict[str, Any]) -> datetime:
    """When Docker says the container stopped, in local time (now, when it does not say)."""
    finished = str(state.get("FinishedAt") or "")
    try:  # RFC 3339 with nanoseconds: "2026-12-04T14:46:03.123456789Z"
        at = datetime.fromisoformat(re.sub(r"(\.\d{6})\d*", r"\1", finished.replace("Z", "+00:00")))
    except ValueError:
        return datetime.now()
    return at.astimezone().replace(tzinfo=None) if at.year > 1 else datetime.now()
