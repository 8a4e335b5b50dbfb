"""Warm `pytest features/` wall time: the sandbox as containers beside the sandbox as processes, in the same run.

``python -m benchmarks.containers_vs_sandbox [--runs 3]`` (root, a Docker engine answering; see setup.sh). One
untimed containers run first builds and loads the project's images (warm: later runs find them in Docker); then the
two runtimes alternate, each run a fresh pytest process, and the medians are compared.
Target on a 2-core machine: containers at most 2x the processes sandbox. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time

from immich_conformance import REPO_ROOT

RUNTIMES = {
    "processes": ["--runtime", "processes"],
    "containers": ["--runtime", "containers", "--images", "local"],
}
TARGET_RATIO = 2.0


def one_run(runtime: str) -> tuple[float, str, float | None]:
    """Wall time, pytest's summary line, and the start-up time the run reported (containers only)."""
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "pytest", "features/", "-q", "-s", "-p", "no:cacheprovider",
                             *RUNTIMES[runtime]], cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    elapsed = time.perf_counter() - started
    summary = (result.stdout.strip().splitlines() or ["(no output)"])[-1]
    if result.returncode != 0:
        raise SystemExit(f"pytest features/ --runtime {runtime} failed (exit {result.returncode}): {summary}\n"
                         f"{(result.stdout + result.stderr)[-3000:]}")
    ready = re.search(r"containers ready in (\d+(?:\.\d+)?)s", result.stdout)
    return elapsed, summary, float(ready.group(1)) if ready else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each runtime (default 3)")
    args = parser.parse_args()
    print("warming up: one containers run (builds and loads the project's images when needed)", flush=True)
    elapsed, summary, _ = one_run("containers")
    print(f"  warm-up {elapsed:.1f} s: {summary}", flush=True)
    times: dict[str, list[float]] = {name: [] for name in RUNTIMES}
    startups: list[float] = []
    for n in range(1, args.runs + 1):
        for runtime in RUNTIMES:
            elapsed, summary, ready = one_run(runtime)
            times[runtime].append(elapsed)
            if ready is not None:
                startups.append(ready)
            shown = f", containers ready after {ready:.1f} s" if ready is not None else ""
            print(f"run {n} {runtime:<10} {elapsed:5.1f} s  ({summary}{shown})", flush=True)
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, values in times.items():
        print(f"{name:<10} median {medians[name]:5.1f} s  (min {min(values):.1f}, max {max(values):.1f}, "
              f"{len(values)} runs)")
    if startups:
        print(f"containers start-up (until the API key): median {statistics.median(startups):.1f} s")
    ratio = medians["containers"] / medians["processes"]
    verdict = "within" if ratio <= TARGET_RATIO else "over"
    print(f"containers / processes: {ratio:.2f}x ({verdict} the target of {TARGET_RATIO:.0f}x)")


if __name__ == "__main__":
    main()
