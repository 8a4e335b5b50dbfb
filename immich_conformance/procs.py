"""Starting, watching and stopping the local processes a run needs; free ports; polling with a timeout."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

LOOPBACK = "127.0.0.1"


class WaitTimeout(TimeoutError):
    """A condition did not become true in time."""


class GiveUp(Exception):
    """Raised by a probe to stop waiting at once: the condition can no longer become true."""


def wait_until(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    """Call ``probe`` until it returns a truthy value (returned) or ``timeout`` seconds pass.

    Exceptions raised by the probe count as "not yet" (the last one is named in the timeout message), except
    ``GiveUp``, which ends the wait at once.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            value = probe()
            if value:
                return value
        except GiveUp:
            raise
        except Exception as exc:  # noqa: BLE001 - a probe may fail while the thing starts
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise WaitTimeout(f"{what} not reached within {timeout:.1f}s{detail}")
        time.sleep(interval)


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that was free on ``host`` a moment ago."""
    return free_ports(1, host)[0]


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """``count`` different TCP ports that were free on ``host`` a moment ago. They are held together while chosen: one
    at a time, the kernel may give a port it has just given again (about 30 times in 1 000 here)."""
    with contextlib.ExitStack() as held:
        sockets = [held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for s in sockets:
            s.bind((host, 0))
        return [s.getsockname()[1] for s in sockets]


# What a process prints when the port it was given was taken before it could bind it (Python, aiohttp, Envoy,
# PostgreSQL, Redis).
_PORT_TAKEN_MARKERS = ("address already in use", "could not bind", "eaddrinuse")


def port_taken(text: str) -> bool:
    """Whether ``text`` (an error, a log) says a port was already in use when a process tried to listen on it."""
    lowered = text.lower()
    return any(marker in lowered for marker in _PORT_TAKEN_MARKERS)


def port_open(port: int, host: str = LOOPBACK) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


_PR_SET_PDEATHSIG = 1


def process_identity(pid: int | None = None) -> str:
    """``pid:start time``: names one process even after its id is reused."""
    pid = pid or os.getpid()
    try:
        # The start time is field 22; the command name (field 2) may hold spaces, so split after its ")".
        start = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        start = "?"
    return f"{pid}:{start}"


def process_alive(identity: str) -> bool:
    """Whether the process ``identity`` (from ``process_identity``) still runs."""
    pid, _, _ = identity.partition(":")
    if not pid.isdigit():
        return False
    return Path(f"/proc/{pid}").exists() and process_identity(int(pid)) == identity


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it when the process that started it dies (also through exec)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class ManagedProcess:
    """A child process with its output in a log file, stopped with its whole process group."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(os.environ if env is None else env)
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ManagedProcess:
        """Start the process in a session of its own; it is sent SIGTERM if this process dies."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        try:
            self.proc = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - nothing outlives a run that crashed
            )
        finally:
            log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} was not started"
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_since(self, offset: int) -> str:
        try:
            with self.log_path.open("rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_ready(self, probe: Callable[[], object], *, timeout: float) -> None:
        """Poll ``probe`` until it is truthy; fail early, with the log's tail, if the process dies."""

        def check() -> object:
            if not self.alive():
                code = self.proc.returncode if self.proc else None
                raise ProcessDied(f"{self.name} exited with code {code} while starting; last lines of "
                                  f"{self.log_path}:\n{self.log_tail()}")
            return probe()

        try:
            wait_until(check, timeout=timeout, what=f"{self.name} ready")
        except WaitTimeout as exc:
            raise WaitTimeout(f"{exc}; last lines of {self.log_path}:\n{self.log_tail()}") from None

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=timeout)


class ProcessDied(GiveUp):
    """A managed process exited while it was expected to run."""
