"""Where a run's CPU time goes: the machine's processes sampled while it runs, their CPU summed by program.

A process the sampler sees is counted by its last sample (user + system time since it started, or since the first
sample for one that was already running). With the kernel's process accounting (``process_accounting``, root), a
process that ended is counted from its accounting record instead: all it spent, and the processes that lived less
than an interval too, under their command name and the program that started them. Without it, those are missing
and the table's total is below the machine's busy time: the difference is printed. Python processes are told apart
by what they run (``-m module``, a script's name, or a pytest-xdist worker). The sampler's own CPU is printed too:
it is part of the run's busy time.

Used by ``benchmarks.suite``; ``python -m benchmarks.cpu_by_program [--accounting] SECONDS`` samples the machine for
that long (a cluster left up and idle, say).
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePath

import psutil

from benchmarks.process_accounting import Exited, ProcessAccounting

INTERVAL = 0.5
SAME_START = 1.5  # seconds: an accounting record has its start in whole seconds, psutil in fractions


def program_of(name: str, cmdline: list[str]) -> str:
    """A name for what a process runs: its executable's name, or for Python what it was started with."""
    if not name.startswith("python") or len(cmdline) < 2:
        return name
    args = cmdline[1:]
    while args and args[0] in ("-u", "-B", "-E", "-s", "-I", "-O"):
        args = args[1:]
    if not args:
        return "python"
    if args[0] == "-m" and len(args) > 1:
        return f"python -m {args[1]}"
    if args[0].startswith("-m") and len(args[0]) > 2:  # -mpytest
        return f"python -m {args[0][2:]}"
    if args[0] == "-c":
        return "python -c (a pytest-xdist worker)" if "exec(eval(sys.stdin.readline()))" in " ".join(args) \
            else "python -c"
    return f"python {PurePath(args[0]).name}"


@dataclass
class Seen:
    """One process as last sampled: what it runs, its start and its CPU time (seconds)."""

    name: str
    program: str
    started: float
    own: float
    first_own: float = 0.0  # what it had spent when first counted: 0 for a process started during the run


Key = tuple[int, float]  # pid and start time: a pid is reused, the pair is not


class CpuByProgram:
    """A background sampler: ``start()``, the work, ``stop()``, then ``table()``.

    Given the kernel's accounting records of the processes that ended (``process_accounting``), it counts those
    from their records (all they spent, however short they lived), under the program the sampler saw them run, or
    for one it never saw, under its command name and the program that started it."""

    def __init__(self, interval: float = INTERVAL) -> None:
        self.interval = interval
        self.seen: dict[Key, Seen] = {}
        self.before: set[Key] = set()
        self.started = 0.0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="cpu-by-program", daemon=True)
        self.own_cpu = 0.0

    def sample(self) -> None:
        for proc in psutil.process_iter(["name", "cpu_times", "create_time"]):
            try:
                key, times, name = (proc.pid, proc.info["create_time"]), proc.info["cpu_times"], proc.info["name"]
                if times is None:
                    continue
                own = times.user + times.system
                known = self.seen.get(key)
                if known is None:
                    known = self.seen[key] = Seen(name, program_of(name or "?", proc.cmdline()), key[1], own)
                    if key in self.before:
                        known.first_own = own
                elif known.name != name:  # it ran another program (exec): count it under that one
                    known.name, known.program = name, program_of(name or "?", proc.cmdline())
                known.own = own
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue

    def start(self) -> None:
        self.started = time.time()
        self.before = {(proc.pid, proc.info["create_time"]) for proc in psutil.process_iter(["create_time"])}
        self.sample()
        self.thread.start()

    def _run(self) -> None:
        started = time.thread_time()
        while not self.stopping.wait(self.interval):
            self.sample()
        self.sample()
        self.own_cpu = time.thread_time() - started

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join()

    def by_pid(self) -> dict[int, list[Seen]]:
        index: dict[int, list[Seen]] = {}
        for (pid, _), seen in self.seen.items():
            index.setdefault(pid, []).append(seen)
        return index

    @staticmethod
    def seen_as(index: dict[int, list[Seen]], record: Exited) -> Seen | None:
        """The process the sampler saw with the record's pid that started then (the record has whole seconds)."""
        found = [seen for seen in index.get(record.pid, []) if abs(seen.started - record.started) <= SAME_START]
        return found[0] if len(found) == 1 else None

    @staticmethod
    def parent_of(index: dict[int, list[Seen]], record: Exited, records: dict[int, Exited]) -> str:
        seen = [s for s in index.get(record.ppid, []) if s.started <= record.started + SAME_START]
        if seen:
            return max(seen, key=lambda s: s.started).program
        parent = records.get(record.ppid)
        return f"{parent.comm} (not sampled)" if parent is not None else f"pid {record.ppid}"

    def by_program(self, ended: list[Exited] | None = None) -> Counter[str]:
        """CPU seconds spent during the run, by program. Without the accounting records (``ended``), a process is
        counted up to its last sample and one that lived less than an interval is not counted at all."""
        return self.counted(ended)[0]

    def counted(self, ended: list[Exited] | None = None) -> tuple[Counter[str], Counter[str]]:
        """CPU seconds spent during the run by program (as ``by_program``), and how many processes each ran."""
        spent: Counter[str] = Counter()
        processes: Counter[str] = Counter()
        counted: set[int] = set()
        records, index = {record.pid: record for record in ended or []}, self.by_pid()
        for record in ended or []:
            seen = self.seen_as(index, record)
            if seen is not None:
                spent[seen.program] += max(0.0, record.cpu - seen.first_own)
                processes[seen.program] += 1
                counted.add(id(seen))
            elif record.started >= self.started - 1:
                program = f"{record.comm} (not sampled), started by {self.parent_of(index, record, records)}"
                spent[program] += record.cpu
                processes[program] += 1
        for seen in self.seen.values():
            if id(seen) not in counted:
                spent[seen.program] += max(0.0, seen.own - seen.first_own)
                processes[seen.program] += 1
        return spent, processes

    def table(self, busy: float, ended: list[Exited] | None = None, rows: int = 30) -> list[str]:
        """The programs that spent the most, and how much of ``busy`` (the machine's CPU seconds) is in none."""
        spent, processes = self.counted(ended)
        spent = +spent  # the unary plus drops the programs that spent nothing
        lines = [f"{'program':<64}{'core-s':>9}{'processes':>11}"]
        lines += [f"{program[:63]:<64}{seconds:>9.1f}{processes[program]:>11}"
                  for program, seconds in spent.most_common(rows)]
        rest = spent.most_common()[rows:]
        if rest:
            lines.append(f"{f'{len(rest)} more programs':<64}{sum(s for _, s in rest):>9.1f}")
        lines.append(f"{'the sampler itself (in the programs above)':<64}{self.own_cpu:>9.1f}")
        rest_is = "in no process (interrupts)" if ended is not None else \
            "not sampled (processes shorter than an interval; see --accounting) or in no process"
        lines.append(f"{rest_is[:63]:<64}{max(0.0, busy - sum(spent.values())):>9.1f}")
        return lines


def busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot, over all cores: user, system, interrupts, steal
    (Linux counts guest time inside user time, so it is not added again)."""
    times = psutil.cpu_times()._asdict()
    return sum(v for k, v in times.items() if k not in ("idle", "iowait", "guest", "guest_nice"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("seconds", type=float, nargs="?", default=60.0, help="how long to sample (default 60)")
    add_accounting_option(parser)
    args = parser.parse_args()
    sampler, before = CpuByProgram(), busy_seconds()
    with tempfile.TemporaryDirectory(prefix="cpu-by-program-") as scratch, \
            accounting(args.accounting, Path(scratch)) as acct:
        sampler.start()
        time.sleep(args.seconds)  # the measurement itself: the sampler polls in its thread meanwhile
        sampler.stop()
        busy = busy_seconds() - before
        ended = acct.records() if acct is not None else None
    print(f"busy {busy:.1f} core-s in {args.seconds:.0f} s")
    print("\n".join(sampler.table(busy, ended)))


def add_accounting_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--accounting", action="store_true",
                        help="count every process that ends, however short, with the kernel's process accounting "
                             "(root; switches the machine's accounting file, if any, to a temporary one for the run "
                             "and leaves accounting off afterwards)")


@contextmanager
def accounting(wanted: bool, scratch: Path) -> Iterator[ProcessAccounting | None]:
    """The kernel's accounting for the run when ``--accounting`` asks for it; one line and exit 2 when refused."""
    if not wanted:
        yield None
        return
    acct = ProcessAccounting(scratch / "pacct")
    try:
        acct.on()
    except OSError as error:
        raise SystemExit(f"{error.strerror}; leave out --accounting") from None
    try:
        yield acct
    finally:
        acct.off()


if __name__ == "__main__":
    main()
