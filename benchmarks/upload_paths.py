"""Upload throughput of the LAN path and the external path: prints numbers. ``python -m benchmarks.upload_paths``.

One embedded sandbox; the load test (``loadtests/upload.py``) runs headless against it twice, one path at a time,
with the same users, duration and sizes: only the LAN uploader (API key, straight to Immich), then only the external
uploader (service token and API key, through the edge and the origin proxy). Each run is pointed at the sandbox with
``--host`` and the target's environment, so the same sandbox serves both. Prints uploads/s and MB/s (10^6 bytes of
request body per second) per path, and external / LAN. Each run still checks that nothing was lost, and cleans up.
On loopback the paths are bounded by the machine's CPU (2 cores here, shared by the uploader, the edge stand-in, the
proxy, Immich's stand-in and Postgres), not by a link: read the ratio as the cost of the extra hops on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from immich_conformance import REPO_ROOT
from immich_conformance.limits import SERVICE_TOKEN_ID_HEADER, SERVICE_TOKEN_SECRET_HEADER
from immich_conformance.targets.sandbox import Sandbox
from loadtests import target_settings as env_names
from loadtests.options import DEFAULT_UPLOAD_SIZES

LOCUSTFILE = REPO_ROOT / "loadtests" / "upload.py"
PATHS = ("lan", "external")


def target_environment(sandbox: Sandbox) -> dict[str, str]:
    tokens = sandbox.service_token_headers
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("LOCUST_", "IMMICH_CONFORMANCE_"))}
    environ.update({
        env_names.ENV_EXTERNAL_URL: sandbox.external.url,
        env_names.ENV_PUBLIC_HOSTNAME: sandbox.public_hostname,
        env_names.ENV_API_KEY: sandbox.api_key,
        env_names.ENV_TOKEN_ID: tokens[SERVICE_TOKEN_ID_HEADER],
        env_names.ENV_TOKEN_SECRET: tokens[SERVICE_TOKEN_SECRET_HEADER],
        env_names.ENV_NAS_PATH: str(sandbox.nas_root),
        env_names.ENV_MEDIA_LOCATION: str(sandbox.media_location),
    })
    return environ


def run_path(sandbox: Sandbox, path: str, users: int, duration: str, sizes: str, workdir: Path) -> dict[str, Any]:
    summary = workdir / f"{path}.json"
    weights = {"lan": "0", "external": "0", "browse": "0", "oversize": "0"} | {path: "1"}
    argv = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary",
        "-u", str(users), "-r", str(users), "-t", duration, "--host", sandbox.lan.url,
        *[a for key, value in weights.items() for a in (f"--{key}-weight", value)],
        "--upload-sizes", sizes, "--summary-json", str(summary),
        # numbers, not a verdict on speed: only failures and losses make a run unusable
        "--min-uploads-per-s", "0", "--min-upload-mb-per-s", "0", "--max-upload-p95-ms", "1e12",
    ]
    print(f"running the {path} path: {users} users for {duration} ...", flush=True)
    done = subprocess.run(argv, cwd=REPO_ROOT, env=target_environment(sandbox), capture_output=True, text=True,
                          timeout=600)
    if not summary.exists():
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
        raise SystemExit(f"the {path} run produced no summary (exit code {done.returncode})")
    result = json.loads(summary.read_text())
    if not result["passed"]:
        print(f"  the {path} run is not clean: {'; '.join(result['broken'])}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=4, help="users per run (default 4)")
    parser.add_argument("--duration", default="20s", help="length of each run, locust's -t (default 20s)")
    parser.add_argument("--sizes", default=DEFAULT_UPLOAD_SIZES,
                        help=f"image sizes, the load test's --upload-sizes (default {DEFAULT_UPLOAD_SIZES})")
    args = parser.parse_args()
    if not 1 <= args.users <= 50:
        parser.error("--users must be between 1 and 50")

    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="upload-paths-") as tmp, Sandbox(progress=lambda m: None) as sandbox:
        for path in PATHS:
            results[path] = run_path(sandbox, path, args.users, args.duration, args.sizes, Path(tmp))

    print(f"\nupload paths on the embedded sandbox ({os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.2f}): {args.users} users, {args.duration} per path, sizes {args.sizes}")
    print(f"{'path':<10}{'uploads':>9}{'uploads/s':>11}{'MB/s':>9}{'p95 ms':>9}{'failed':>8}{'lost':>6}")
    for path, result in results.items():
        figures = result["paths"][path]
        lost = (result["lost"] or 0) + (result["corrupt"] or 0)
        print(f"{path:<10}{figures['uploads']:>9}{figures['uploads_per_s']:>11.2f}{figures['mb_per_s']:>9.1f}"
              f"{figures['p95_ms']:>9.0f}{result['failures']:>8}{lost:>6}")
    lan, external = results["lan"]["paths"]["lan"], results["external"]["paths"]["external"]
    if lan["uploads_per_s"] and lan["mb_per_s"]:
        print(f"external / LAN: {external['uploads_per_s'] / lan['uploads_per_s']:.2f} x uploads/s, "
              f"{external['mb_per_s'] / lan['mb_per_s']:.2f} x MB/s")
    else:
        print("external / LAN: no ratio (the LAN run uploaded nothing)")


if __name__ == "__main__":
    main()
