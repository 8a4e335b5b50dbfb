"""The suite benchmark's CPU table: a process's CPU is counted under what it runs, and only what it spent meanwhile."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from benchmarks.cpu_by_program import CpuByProgram, busy_seconds, program_of
from benchmarks.process_accounting import IN_USE_ENV, RECORD, Exited, ProcessAccounting, comp_t, parse
from immich_conformance.procs import wait_until

SPIN = "import time\nstart = time.process_time()\nwhile time.process_time() - start < {seconds}:\n    pass\n"


@pytest.mark.parametrize(("name", "cmdline", "program"), [
    ("etcd", ["/opt/bin/etcd", "--data-dir", "/x"], "etcd"),
    ("python3", ["python3", "-m", "pytest", "-q"], "python -m pytest"),
    ("python3.12", ["/usr/bin/python3.12", "-u", "-m", "locust", "-f", "x.py"], "python -m locust"),
    ("python", ["python", "-c", "import sys;exec(eval(sys.stdin.readline()))"], "python -c (a pytest-xdist worker)"),
    ("python", ["python", "/work/tests/helper_script.py", "--x"], "python helper_script.py"),
    ("python", ["python"], "python"),
])
def test_a_process_is_named_by_what_it_runs(name: str, cmdline: list[str], program: str) -> None:
    assert program_of(name, cmdline) == program


def test_a_process_is_counted_for_what_it_spent_during_the_run_only(tmp_path: Path) -> None:
    during, before_start = tmp_path / "started_during_the_run.py", tmp_path / "running_before_the_run.py"
    during.write_text(SPIN.format(seconds=1.5))
    before_start.write_text(SPIN.format(seconds=1.6) + "time.sleep(60)\n")  # a second before start(), then a little
    already = subprocess.Popen([sys.executable, str(before_start)])
    try:
        wait_until(lambda: sum(psutil.Process(already.pid).cpu_times()[:2]) >= 1.0, timeout=30, interval=0.05,
                   what="the process running before the sampler has spent a second")
        sampler, before = CpuByProgram(interval=0.1), busy_seconds()
        sampler.start()
        subprocess.run([sys.executable, str(during)], check=True, timeout=60)
        sampler.stop()
        spent_in_all = sum(psutil.Process(already.pid).cpu_times()[:2])
        busy = busy_seconds() - before
    finally:
        already.kill()
        already.wait(timeout=10)
    spent = sampler.by_program()
    assert 1.3 <= spent["python started_during_the_run.py"] <= 2.0, spent
    assert 0 < spent["python running_before_the_run.py"] <= spent_in_all - 0.9, spent
    # A seen process's time is not counted again under the parent that reaps it.
    assert sum(spent.values()) <= busy * 1.05 + 0.2, (busy, spent.most_common(5))
    table = sampler.table(busy)
    assert any(line.startswith("python started_during_the_run.py") for line in table), table
    assert table[-1].startswith("not sampled")


def test_a_process_that_runs_another_program_is_counted_under_the_one_it_runs(tmp_path: Path) -> None:
    target = tmp_path / "exec_target.py"
    target.write_text(SPIN.format(seconds=1.0))
    sampler = CpuByProgram(interval=0.05)
    sampler.start()
    # bash spins until sampled at least once, then becomes Python (as runc's init becomes a container's program)
    child = subprocess.Popen(["bash", "-c", f"for i in $(seq 300000); do :; done; exec {sys.executable} {target}"])
    assert child.wait(timeout=60) == 0
    sampler.stop()
    seen = [seen for (pid, _), seen in sampler.seen.items() if pid == child.pid]  # other tests run bash too
    assert [s.program for s in seen] == ["python exec_target.py"], seen
    assert sampler.by_program()["python exec_target.py"] >= 0.9


@pytest.fixture
def kernel_accounting(tmp_path: Path) -> Iterator[ProcessAccounting]:
    """The kernel's process accounting, into a file of the test's, for the length of the test; one test at a time
    across the workers (it is one setting for the whole machine)."""
    if os.environ.get(IN_USE_ENV):
        pytest.skip(f"the kernel's process accounting is in use by the run that started this suite ({IN_USE_ENV})")
    if not os.environ.get("CI"):
        pytest.skip("turns the machine's process accounting off when done, whoever turned it on: runs in CI only "
                    "(CI set), on a machine of its own")
    with (Path(tempfile.gettempdir()) / "immich-conformance-process-accounting.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        acct = ProcessAccounting(tmp_path / "pacct")
        try:
            acct.on()
        except OSError as error:
            pytest.skip(error.strerror)
        try:
            yield acct
        finally:
            acct.off()


def test_processes_too_short_to_be_sampled_are_counted_from_the_kernels_records(
        tmp_path: Path, kernel_accounting: ProcessAccounting) -> None:
    parent, child = tmp_path / "parent_of_short_lived.py", tmp_path / "short_lived.py"
    child.write_text(SPIN.format(seconds=0.1))
    parent.write_text("import subprocess, sys\n"
                      f"for _ in range(12):\n    subprocess.run([sys.executable, {str(child)!r}], check=True)\n"
                      "print('done', flush=True)\n"
                      "sys.stdin.readline()\n")
    sampler = CpuByProgram(interval=600)  # samples at start() and stop() only: no child is seen
    sampler.start()
    started = subprocess.Popen([sys.executable, str(parent)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True)
    try:
        assert started.stdout is not None and started.stdout.readline() == "done\n"
        sampler.stop()  # its last sample sees the parent
    finally:
        started.communicate("\n", timeout=60)
    kernel_accounting.off()
    comm = Path(sys.executable).name[:15]
    spent = sampler.by_program(kernel_accounting.records())
    assert 1.1 <= spent[f"{comm} (not sampled), started by python parent_of_short_lived.py"] <= 2.5, spent
    assert "python short_lived.py" not in spent
    assert not any(program.startswith(f"{comm} (not sampled)") for program in sampler.by_program())


def test_a_process_that_ended_is_counted_for_all_it_spent_during_the_run(
        tmp_path: Path, kernel_accounting: ProcessAccounting) -> None:
    script = tmp_path / "ends_between_samples.py"
    script.write_text(SPIN.format(seconds=1.2))
    started = subprocess.Popen([sys.executable, str(script)])
    try:
        wait_until(lambda: sum(psutil.Process(started.pid).cpu_times()[:2]) >= 0.2, timeout=30, interval=0.02,
                   what="the process has spent a fifth of a second")
        sampler = CpuByProgram(interval=600)  # samples at start() and stop() only
        sampler.start()
        started.wait(timeout=60)
        sampler.stop()
    finally:
        started.kill()
        started.wait(timeout=10)
    kernel_accounting.off()
    records = kernel_accounting.records()
    spent = sampler.by_program(records)
    # Sampled at start() only, it counts nothing without the records; with them, what it spent after start(): all
    # it spent (its own record, start-up included) but the fifth of a second or more before start(), to a tick.
    [total] = [record.cpu for record in records if record.pid == started.pid]
    assert sampler.by_program()["python ends_between_samples.py"] == 0
    assert 0.6 <= spent["python ends_between_samples.py"] <= total - 0.2 + 0.02, (total, spent)


def test_an_accounting_record_is_read_as_linux_writes_it() -> None:
    assert comp_t(100) == 100
    assert comp_t((1 << 13) | 100) == 800  # exponent 1: times 8
    record = RECORD.pack(0, 3, 0, 0, 0, 0, 4242, 1, 1_800_000_000, 12.5, 150, comp_t_of(1000), 0, 0, 0, 0, 0, 0,
                         b"kubectl\0\0\0\0\0\0\0\0\0")
    old = RECORD.pack(0, 2, *([0] * 16), b"old\0" + bytes(12))
    assert parse(record + old) == [Exited(4242, 1, 1_800_000_000, 11.5, "kubectl")]


def comp_t_of(ticks: int) -> int:
    exponent = 0
    while ticks >= 1 << 13:
        ticks, exponent = ticks >> 3, exponent + 1
    return exponent << 13 | ticks
