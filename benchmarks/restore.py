"""A large library restored and rehearsed: wall time per phase, and the disk the library copy takes.

``python -m benchmarks.restore [--assets 10000] [--sample 10]`` (root, a Docker engine answering; see setup.sh).
Seeds the rehearsal's library plus ``--assets`` small photos on the from-release (the stack's containers with the
Immich double), lets Immich's own job back it up, then runs ``rehearse --restore`` with ``--library-sample`` and with
the whole library, and ``verify-backup`` with the whole library. Target on 2 cores: under 10 minutes for the whole
run, the sample's copy no larger than the sample. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from immich_conformance import REPO_ROOT
from immich_conformance.rehearsal.seed_backup import seed_backup

PHASE = re.compile(r"^  (.+?)\s+(PASSED|FAILED|SKIPPED)\s+(\d+(?:\.\d+)?) s$", re.MULTILINE)
COPY = re.compile(r"library copy: (.+?), (\d+) file\(s\), (\d+(?:\.\d+)?) MiB")


def _size(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def timed(argv: list[str], what: str) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "immich_conformance.cli", *argv], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=3600)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{what} failed (exit {result.returncode}):\n{(result.stdout + result.stderr)[-4000:]}")
    return elapsed, result.stdout


def rehearse(backup: Path, library: Path, reports: Path, sample: int | None) -> None:
    label = f"rehearse --restore --library-sample {sample}" if sample else "rehearse --restore (whole library)"
    extra = ["--library-sample", str(sample)] if sample else []
    elapsed, out = timed(["rehearse", "--runtime", "containers", "--images", "local", "--restore", str(backup),
                          "--library", str(library), *extra, "--reports", str(reports)], label)
    print(f"{label}: {elapsed:.1f} s", flush=True)
    for name, verdict, seconds in PHASE.findall(out):
        print(f"  {name:<46} {float(seconds):7.1f} s  {verdict}", flush=True)
    if copied := COPY.search(out):
        print(f"  library copy ({copied.group(1)}): {copied.group(2)} files, peak disk {copied.group(3)} MiB",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assets", type=int, default=10_000, help="small photos added to the library (10000)")
    parser.add_argument("--sample", type=int, default=10, help="--library-sample N for the sampled run (10)")
    args = parser.parse_args()
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="restore-benchmark-") as work:
        folder = Path(work)
        started = time.perf_counter()
        backup, library = seed_backup(folder / "nightly", progress=lambda message: None, extra_photos=args.assets)
        files, size = _size(library)
        print(f"seed {args.assets} photos + back up: {time.perf_counter() - started:.1f} s (library {files} files, "
              f"{size / 2**20:.1f} MiB; backup {backup.stat().st_size / 2**20:.1f} MiB)", flush=True)
        rehearse(backup, library, folder / "sample", args.sample)
        rehearse(backup, library, folder / "whole", None)
        elapsed, out = timed(["verify-backup", str(backup), "--library", str(library)], "verify-backup")
        verdict = next((line for line in out.splitlines() if line.startswith("verdict:")), "(no verdict)")
        print(f"verify-backup --library (whole): {elapsed:.1f} s; {verdict}", flush=True)
    print(f"total: {time.perf_counter() - began:.1f} s (target on 2 cores: under 600 s)", flush=True)


if __name__ == "__main__":
    main()
