"""Watching the processes a target started: which one exited while it should run, how, when, its last log lines."""

from __future__ import annotations

import signal
import threading
from dataclasses import dataclass
from datetime import datetime

from ..procs import ManagedProcess

TAIL_LINES = 20
WATCH_INTERVAL = 0.5


@dataclass(frozen=True)
class Death:
    """A component that exited while the target was up."""

    name: str
    how: str
    """"exited with signal 9 (SIGKILL)", "exited with code 1"."""
    at: datetime
    log_source: str
    """Where the log lines come from: a file, a container's log."""
    log_tail: str

    @property
    def summary(self) -> str:
        """What died, how and when."""
        return f"{self.name} {self.how} at {self.at:%H:%M:%S}"

    @property
    def line(self) -> str:
        """The one line a failed scenario shows (its log lines go with ``details``)."""
        return f"{self.summary}; last log lines attached"

    @property
    def details(self) -> str:
        """The last lines of its log, under the file they come from."""
        body = "\n".join(f"  {line}" for line in self.log_tail.splitlines()) or "  (its log is empty)"
        return f"last {TAIL_LINES} lines of {self.log_source}:\n{body}"


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return ""


def process_exit(returncode: int) -> str:
    """How a process ended, from ``Popen.returncode`` (negative: the signal that killed it)."""
    if returncode < 0:
        name = _signal_name(-returncode)
        return f"exited with signal {-returncode}{f' ({name})' if name else ''}"
    return f"exited with code {returncode}"


def container_exit(exit_code: int, oom_killed: bool = False) -> str:
    """How a container ended, from its State (exit code 128+n: killed by signal n)."""
    how = f"exited with code {exit_code}"
    if exit_code > 128 and (name := _signal_name(exit_code - 128)):
        how += f" (signal {exit_code - 128}, {name})"
    return f"{how}, out of memory" if oom_killed else how


class Supervisor:
    """Records each watched process that exits before ``stop``: by a watcher thread, and on every ``deaths()``."""

    def __init__(self, interval: float = WATCH_INTERVAL) -> None:
        self._interval = interval
        self._watched: dict[str, ManagedProcess] = {}
        self._deaths: dict[str, Death] = {}
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, process: ManagedProcess) -> None:
        """Watch a started process under its name."""
        with self._lock:
            self._watched[process.name] = process

    def watched(self, name: str) -> ManagedProcess:
        """The watched process of that name (KeyError naming the ones there are)."""
        with self._lock:
            if name not in self._watched:
                raise KeyError(f"no component {name!r} is watched (there are: {', '.join(sorted(self._watched))})")
            return self._watched[name]

    def start(self) -> None:
        """Begin watching in the background (the target is up: from now on an exit is a death)."""
        self._thread = threading.Thread(target=self._run, name="component-supervisor", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            self.deaths()

    def deaths(self) -> list[Death]:
        """Every watched process that has exited, first death first (none once ``stop`` was called: the target is
        stopping them itself)."""
        with self._lock:
            if self._stopped.is_set():
                return list(self._deaths.values())
            for name, process in self._watched.items():
                if name in self._deaths or process.proc is None:
                    continue
                code = process.proc.poll()
                if code is not None:
                    self._deaths[name] = Death(name, process_exit(code), datetime.now(), str(process.log_path),
                                               process.log_tail(TAIL_LINES))
            return list(self._deaths.values())

    def stop(self) -> None:
        """Stop watching: what exits from now on is stopped on purpose."""
        with self._lock:
            self._stopped.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
