"""Wall time of a cold `pytest features/` on the sandbox: a fresh process each run, median of several.

``python -m benchmarks.features_run [--runs 5] [-- extra pytest arguments]``. Prints numbers; asserts nothing.
Target on a 2-core machine: a median of at most 20 s.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time

from immich_conformance import REPO_ROOT


def one_run(extra: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "pytest", "features/", "-q", "-p", "no:cacheprovider", *extra],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - started
    summary = (result.stdout.strip().splitlines() or ["(no output)"])[-1]
    if result.returncode != 0:
        raise SystemExit(f"pytest features/ failed (exit {result.returncode}): {summary}\n{result.stdout[-3000:]}")
    return elapsed, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("extra", nargs="*", help="arguments passed on to pytest (after --)")
    args = parser.parse_args()
    times = []
    for n in range(1, args.runs + 1):
        elapsed, summary = one_run(args.extra)
        times.append(elapsed)
        scenarios = re.search(r"(\d+) passed", summary)
        print(f"run {n}: {elapsed:5.1f} s  ({scenarios.group(1) if scenarios else '?'} scenarios passed)", flush=True)
    print(f"cold pytest features/: median {statistics.median(times):.1f} s, min {min(times):.1f} s, "
          f"max {max(times):.1f} s over {args.runs} runs (target <= 20 s)")


if __name__ == "__main__":
    main()
