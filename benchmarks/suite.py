"""Wall time of the README's second command (the whole suite, `pytest -n auto`), by test folder and worker group.

``python -m benchmarks.suite`` runs `pytest -n auto` once with a JUnit report and prints the wall time and, per folder
of tests/ (and features/), the summed test time, the number of tests and the slowest test; the slowest tests of all;
then the summed time of each pytest-xdist group (tests/worker_groups.py): a group runs in one worker, so the largest
is the floor of the wall time, and the rest spreads over the other workers. ``--junit FILE`` reads a report already
written instead (CI's reports/junit.xml). Whether a run is cold or warm is the caches': the offline cluster's binaries
(~/.cache/immich-conformance/cluster) and images (/var/lib/immich-conformance); run it once after clearing them for
the cold figure. When it runs the suite it also prints the CPU time the whole machine spent (every process: the
suite, its subprocesses, the cluster, containers), the floor that puts under the wall time (no schedule over this
machine's cores can finish sooner than that CPU time divided by the cores), and where that CPU time went, by program
(benchmarks/cpu_by_program.py; with ``--accounting``, every process however short). Prints numbers; asserts
nothing. Targets on 2 cores: warm at most 6 min, cold at most 20 min.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

import psutil

from benchmarks.cpu_by_program import CpuByProgram, accounting, add_accounting_option, busy_seconds
from benchmarks.process_accounting import IN_USE_ENV
from immich_conformance import REPO_ROOT
from tests.worker_groups import GROUPS

SLOWEST = 20  # tests listed by time after the folders


def folder_of(classname: str, file: str | None) -> str:
    path = file or classname.replace(".", "/")
    parts = Path(path).parts
    if parts and parts[0] == "tests" and len(parts) > 2:
        return "/".join(parts[:2])
    return parts[0] if parts else "?"


def by_folder(junit: Path) -> tuple[float, dict[str, list[tuple[float, str]]]]:
    root = ET.parse(junit).getroot()
    suites = [root] if root.tag == "testsuite" else list(root)
    total = sum(float(s.get("time", 0)) for s in suites)
    folders: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for case in root.iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        folders[folder_of(case.get("classname", ""), case.get("file"))].append((float(case.get("time", 0)), name))
    return total, folders


def not_passed(junit: Path) -> list[str]:
    """The tests of the report that failed or erred, with the first line of why."""
    found = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        for outcome in ("failure", "error"):
            element = case.find(outcome)
            if element is not None:
                why = (element.get("message") or "").strip().splitlines()[:1]
                found.append(f"{outcome}: {case.get('classname')}::{case.get('name')}: {' '.join(why)[:200]}")
    return found


def cpu_floor(busy: float, wall: float, cores: int) -> str:
    """What the machine's CPU time says about a run's wall time."""
    return (f"CPU busy during the run: {busy:.0f} core-s ({100 * busy / (wall * cores):.0f}% of {cores} cores); "
            f"no schedule on {cores} cores can take less than {busy / cores / 60:.1f} min")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--junit", type=Path, help="read this JUnit report instead of running the suite")
    add_accounting_option(parser)
    args = parser.parse_args()
    wall, busy, sampler, ended = None, 0.0, CpuByProgram(), None
    if args.junit is not None:
        total, folders = by_folder(args.junit)
    else:
        with tempfile.TemporaryDirectory(prefix="suite-benchmark-") as scratch, \
                accounting(args.accounting, Path(scratch)) as acct:
            junit = Path(scratch) / "junit.xml"
            started, busy_before = time.perf_counter(), busy_seconds()
            sampler.start()
            # The suite's own test of the accounting would turn it off under the benchmark: it is told to skip.
            env = {**os.environ, **({IN_USE_ENV: str(acct.path)} if acct is not None else {})}
            done = subprocess.run([sys.executable, "-m", "pytest", "-n", "auto", "-q", "-p", "no:cacheprovider",
                                   f"--junitxml={junit}"], cwd=REPO_ROOT, capture_output=True, text=True, env=env)
            wall, busy = time.perf_counter() - started, busy_seconds() - busy_before
            sampler.stop()
            ended = acct.records() if acct is not None else None
            print((done.stdout.strip().splitlines() or ["(no output)"])[-1])
            total, folders = by_folder(junit)
            for line in not_passed(junit):  # the report goes with the run's folder: say what did not pass now
                print(line)
    if wall is not None:
        print(f"wall time of `pytest -n auto`: {wall / 60:.1f} min")
        print(cpu_floor(busy, wall, psutil.cpu_count() or 1))
    print(f"test time in the report: {total / 60:.1f} min")
    print(f"{'folder':<28}{'time':>9}{'tests':>7}  slowest")
    for folder, cases in sorted(folders.items(), key=lambda item: -sum(t for t, _ in item[1])):
        slowest = max(cases)
        print(f"{folder:<28}{sum(t for t, _ in cases):>8.1f}s{len(cases):>7}  {slowest[0]:.1f}s {slowest[1][-70:]}")
    print(f"{'slowest tests':<28}{'time':>9}")
    for seconds, name in sorted((case for cases in folders.values() for case in cases), reverse=True)[:SLOWEST]:
        print(f"{'':<28}{seconds:>8.1f}s  {name[-110:]}")
    groups: dict[str, float] = defaultdict(float)
    for folder, cases in folders.items():
        groups[GROUPS.get(folder.removeprefix("tests/"), "spread over the workers")] += sum(t for t, _ in cases)
    print(f"{'xdist group':<28}{'time':>9}")
    for group, seconds in sorted(groups.items(), key=lambda item: -item[1]):
        print(f"{group:<28}{seconds:>8.1f}s")
    if wall is not None:
        print("\n".join(sampler.table(busy, ended)))


if __name__ == "__main__":
    main()
