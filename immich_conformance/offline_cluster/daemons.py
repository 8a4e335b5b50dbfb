"""The cluster's long-running processes: started detached (they outlive the command that ran `up`), found again
through pid files, and stopped by pid."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from immich_conformance.procs import GiveUp, WaitTimeout, wait_until

from .errors import ClusterError
from .machine import process_state

LOG_ROTATE_BYTES = 20 * 1024 * 1024


def _start_time(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19] if ")" in stat else ""


def pid_alive(pid: int) -> bool:
    return process_state(pid) not in ("", "Z", "X")


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def signal_pids(pids: Sequence[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def stop_pids(pids: Sequence[int], *, timeout: float = 15.0, first: int = signal.SIGTERM) -> list[int]:
    """Send ``first``, then SIGKILL to what is still alive after ``timeout``; returns the pids that would not go."""
    pids = [p for p in pids if pid_alive(p)]
    if not pids:
        return []
    signal_pids(pids, first)

    def gone() -> bool:
        for pid in pids:
            _reap(pid)
        return not any(pid_alive(p) for p in pids)

    try:
        wait_until(gone, timeout=timeout, interval=0.1, what="processes to exit")
        return []
    except WaitTimeout:
        pass
    signal_pids([p for p in pids if pid_alive(p)], signal.SIGKILL)
    with contextlib.suppress(WaitTimeout):
        wait_until(gone, timeout=10.0, interval=0.1, what="killed processes to exit")
    return [p for p in pids if pid_alive(p)]


def wait_reaped(pids: Sequence[int], timeout: float = 10.0) -> None:
    """Best effort: give the reaper of orphaned processes a moment so that no exited component lingers as a
    zombie (whoever started the cluster may have exited)."""
    with contextlib.suppress(WaitTimeout):
        wait_until(lambda: not any(Path(f"/proc/{p}").exists() for p in pids), timeout=timeout, interval=0.1,
                   what="exited processes to be reaped")


class Daemon:
    """One component's process with its log (appended) and pid file under the state dir."""

    def __init__(self, name: str, argv: Sequence[str], *, log_path: Path, pid_file: Path,
                 env: Mapping[str, str] | None = None, cwd: Path | None = None) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.pid_file = pid_file
        self.env = dict(os.environ if env is None else env)
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Daemon:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            if self.log_path.stat().st_size > LOG_ROTATE_BYTES:  # keep the previous run's log, one generation
                self.log_path.replace(self.log_path.with_suffix(self.log_path.suffix + ".1"))
        with self.log_path.open("ab") as log:
            log.write(f"\n==== {time.strftime('%Y-%m-%dT%H:%M:%S')} starting {self.name}\n".encode())
            log.flush()
            try:
                self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, env=self.env, cwd=self.cwd,
                                             start_new_session=True)
            except OSError as exc:
                raise ClusterError(f"{self.name} could not be started ({exc}): {self.argv[0]}") from None
        self.pid_file.write_text(f"{self.proc.pid} {_start_time(self.proc.pid)}\n")
        return self

    def recorded_pid(self) -> int | None:
        """The pid from the pid file, if that process still runs (and is the same process)."""
        try:
            pid_text, _, started = self.pid_file.read_text().strip().partition(" ")
            pid = int(pid_text)
        except (OSError, ValueError):
            return None
        if pid_alive(pid) and (not started or _start_time(pid) == started):
            return pid
        return None

    def alive(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        return self.recorded_pid() is not None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def wait_ready(self, probe: Callable[[], object], *, timeout: float, what: str = "ready") -> None:
        def check() -> object:
            if not self.alive():
                raise GiveUp(f"{self.name} exited")
            return probe()

        try:
            wait_until(check, timeout=timeout, interval=0.25, what=f"{self.name} {what}")
        except (WaitTimeout, GiveUp) as exc:
            raise ClusterError(
                f"{self.name} did not become {what} ({exc}). Its log is {self.log_path}; last lines:\n"
                f"{self.log_tail()}\nFix what the log names, then run `up` again (it clears this run first)"
            ) from None

    def stop(self, timeout: float = 15.0) -> int | None:
        """Stop the process; returns its pid (None if it was not running)."""
        pid = self.proc.pid if self.proc is not None and self.proc.poll() is None else self.recorded_pid()
        if pid is not None:
            stop_pids([pid], timeout=timeout)
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=1)
        with contextlib.suppress(FileNotFoundError):
            self.pid_file.unlink()
        return pid
