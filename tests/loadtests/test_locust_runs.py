"""The load test run as CI runs it: a short headless run on the embedded sandbox, a broken threshold, refusals."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from immich_conformance import REPO_ROOT

from . import not_about_speed

LOCUSTFILE = REPO_ROOT / "loadtests" / "upload.py"
UPLOAD_ROWS = ("POST /api/assets [lan]", "POST /api/assets [external]")
OVERSIZE_ROW = "POST /api/assets [external, over limit]"


def run_locust(*args: str, timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith(("LOCUST_", "IMMICH_CONFORMANCE_", "IMMICH_API_KEY", "CF_ACCESS_"))} | (env or {})
    return subprocess.run([sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), *args], cwd=REPO_ROOT, env=environ,
                          capture_output=True, text=True, timeout=timeout)


def stats_rows(prefix: Path) -> dict[str, dict[str, str]]:
    with open(f"{prefix}_stats.csv", newline="") as f:
        return {row["Name"]: row for row in csv.DictReader(f)}


def explain(done: subprocess.CompletedProcess[str]) -> str:
    return f"exit code {done.returncode}\n--- stdout ---\n{done.stdout[-4000:]}\n--- stderr ---\n{done.stderr[-4000:]}"


@pytest.mark.slow
@pytest.mark.uploads
def test_smoke_run_passes_its_gate_with_nothing_lost(tmp_path: Path) -> None:
    prefix, html, summary = tmp_path / "smoke", tmp_path / "report.html", tmp_path / "summary.json"
    done = run_locust("--headless", "-u", "4", "-r", "4", "-t", "8s", "--csv", str(prefix), "--html", str(html),
                      "--summary-json", str(summary), *not_about_speed.ARGS)
    assert done.returncode == 0, explain(done)

    rows = stats_rows(prefix)
    for name in UPLOAD_ROWS:
        assert name in rows, f"no CSV row {name!r}: {sorted(rows)}"
        assert int(rows[name]["Request Count"]) > 0, rows[name]
        assert int(rows[name]["Failure Count"]) == 0, rows[name]
    assert int(rows[OVERSIZE_ROW]["Request Count"]) > 0, rows[OVERSIZE_ROW]
    assert int(rows[OVERSIZE_ROW]["Failure Count"]) == 0, "an over-limit body was not answered 413"
    assert html.stat().st_size > 0

    assert re.search(r"nothing lost: \d+ accepted uploads checked by API checksum and the file on the NAS.*: "
                     r"0 lost, 0 corrupt", done.stdout), explain(done)
    assert "GATE PASSED" in done.stdout
    result = json.loads(summary.read_text())
    uploads = sum(result["paths"][p]["uploads"] for p in ("lan", "external"))
    assert result["lost"] == 0 and result["corrupt"] == 0 and result["nas_checked"] is True
    assert result["checked"] == uploads > 0, "every 201 must have been checked"
    assert result["deleted"] >= result["checked"], "every uploaded asset must have been deleted"

    workdir = re.search(r"sandbox work folder: (\S+) \(removed at the end\)", done.stderr)
    assert workdir, explain(done)
    assert not Path(workdir.group(1)).exists(), "the sandbox was not torn down"


@pytest.mark.slow
@pytest.mark.uploads
def test_a_broken_threshold_fails_the_run_and_says_which(tmp_path: Path) -> None:
    summary = tmp_path / "summary.json"
    done = run_locust("--headless", "-u", "2", "-r", "2", "-t", "4s", "--min-uploads-per-s", "1000000",
                      "--summary-json", str(summary))
    assert done.returncode != 0, explain(done)
    assert "GATE FAILED" in done.stdout, explain(done)
    assert re.search(r"uploads/s on lan [\d.]+ < 1e\+06", done.stdout), explain(done)
    result = json.loads(summary.read_text())
    assert result["passed"] is False
    assert result["lost"] == 0 and result["deleted"] >= result["checked"] > 0, "the checks still run, and clean up"


@pytest.mark.parametrize(("env", "message"), [
    ({"LOCUST_MAX_USERS": "1"}, "-u 2 is more users than the cap of 1"),
    ({"LOCUST_MAX_RUN_TIME": "2s"}, "-t 5s is longer than the 2s this load test allows"),
])
def test_the_load_tests_own_options_are_read_from_locusts_environment_variables(env: dict[str, str],
                                                                               message: str) -> None:
    done = run_locust("--headless", "-u", "2", "-t", "5s", timeout=60, env=env)
    assert done.returncode == 2, explain(done)
    assert message in done.stderr, explain(done)
    assert "starting the embedded sandbox" not in done.stderr


@pytest.mark.parametrize(("args", "message"), [
    (("--headless", "-u", "2"), "a headless run needs a time limit: add -t/--run-time"),
    (("--headless", "-u", "51", "-t", "5s"), "-u 51 is more users than the cap of 50"),
    (("--headless", "-u", "2", "-t", "5s", "--host", "http://127.0.0.1:9"), "IMMICH_API_KEY is not set"),
])
def test_unbounded_or_unconfigured_runs_are_refused_before_anything_starts(args: tuple[str, ...], message: str) -> None:
    done = run_locust(*args, timeout=60)
    assert done.returncode == 2, explain(done)
    assert message in done.stderr, explain(done)
    assert "Traceback" not in done.stderr
    assert "starting the embedded sandbox" not in done.stderr
