"""The offline cluster's timings: prints numbers, asserts nothing. ``python -m benchmarks.cluster`` (root).

- cold provision: the build time of every component, as the build cache recorded it on its cold build (a cold
  measurement needs an empty cache: IMMICH_CONFORMANCE_CACHE=/empty/folder python -m benchmarks.cluster);
- warm up until every pod is Available: cluster up, image import, apply and rollout;
- the wall time of `pytest features/ --target cluster --cluster offline` (provisioning and teardown included).
Targets on 2 cores: cold <= 15 min, warm up with rollout <= 90 s, scenarios <= 60 s.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

from immich_conformance import REPO_ROOT
from immich_conformance.offline_cluster.layout import default_cache_dir


def main() -> None:
    times_file = default_cache_dir() / "build-times.json"
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "pytest", "features/", "--target", "cluster", "--cluster",
                             "offline", "-p", "no:cacheprovider", "-q", "-s"],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=7200)
    wall = time.perf_counter() - started
    out = result.stdout
    if times_file.exists():
        builds = json.loads(times_file.read_text())
        print("cold build (from the cache's record):")
        for component, seconds in builds.items():
            print(f"  {component:<12} {seconds / 60:5.1f} min")
        print(f"  {'total':<12} {sum(builds.values()) / 60:5.1f} min (target <= 15)")

    def seconds(pattern: str) -> float | None:
        match = re.search(pattern, out)
        return float(match.group(1)) if match else None

    up = seconds(r"cluster up in (\d+(?:\.\d+)?)s")
    rollout = seconds(r"every Deployment Available \((\d+(?:\.\d+)?)s after apply\)")
    ready = seconds(r"cluster target ready in (\d+(?:\.\d+)?)s")
    down = seconds(r"cluster down in (\d+(?:\.\d+)?)s")
    print(f"warm up: cluster up {up} s, rollout {rollout} s after apply; ready for scenarios {ready} s after start "
          "(target <= 90)")
    summary = (out.strip().splitlines() or ["?"])[-1]
    scenario_time = wall - (ready or 0) - (down or 0)
    print(f"pytest features/ --target cluster --cluster offline: {wall:.1f} s wall, of which scenarios "
          f"{scenario_time:.1f} s (target <= 60), teardown {down} s; {summary}")
    if result.returncode != 0:
        raise SystemExit(f"the scenarios failed (exit {result.returncode})")


if __name__ == "__main__":
    main()
