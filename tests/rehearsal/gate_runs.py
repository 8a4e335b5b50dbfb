"""Running ``immich-conformance rehearse`` as a person does, and reading its verdicts back from its JUnit report."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from immich_conformance import REPO_ROOT

from ..loadtests import not_about_speed

UPGRADE = "test_4_upgrade_to_the_to_release"
VERIFY = "test_5_verify_the_seeded_assets"
LOAD = "test_7_upload_throughput_on_the_to_release"


def rehearse(reports: Path, *args: str, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    """The gate as a person runs it; its load phase (``--locust-seconds``) without the speed thresholds
    (``not_about_speed``)."""
    return subprocess.run(
        [sys.executable, "-m", "immich_conformance.cli", "rehearse", "--reports", str(reports), *args],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, env=os.environ | not_about_speed.ENVIRONMENT,
    )


def phases(reports: Path) -> dict[str, str]:
    """Each phase's verdict: passed, failed or skipped."""
    verdicts = {}
    for case in ET.parse(reports / "rehearsal.xml").getroot().iter("testcase"):
        outcome = "failed" if case.find("failure") is not None or case.find("error") is not None else (
            "skipped" if case.find("skipped") is not None else "passed")
        verdicts[str(case.get("name"))] = outcome
    return verdicts


def assert_passed(result: subprocess.CompletedProcess[str], reports: Path) -> None:
    """Every phase but the optional load test passed, and the summary says so."""
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-3000:]
    verdicts = phases(reports)
    assert [v for k, v in verdicts.items() if k != LOAD] == ["passed"] * 6, verdicts
    assert "rehearsal PASSED" in result.stdout
    assert (reports / "rehearsal.html").is_file()


def assert_lost_asset_named(result: subprocess.CompletedProcess[str], reports: Path) -> None:
    """The upgrade went through, the verification failed and named the asset that is gone."""
    assert result.returncode == 1, result.stdout[-8000:]
    verdicts = phases(reports)
    assert verdicts[UPGRADE] == "passed", verdicts
    assert verdicts[VERIFY] == "failed", verdicts
    assert re.search(r"asset ([0-9a-f-]{36}) is gone", result.stdout), result.stdout[-6000:]
    assert "rehearsal FAILED" in result.stdout


def assert_failed_upgrade_shows_log(result: subprocess.CompletedProcess[str], reports: Path) -> None:
    """The upgrade phase failed with the new server's log, and every later phase was skipped saying why."""
    assert result.returncode == 1, result.stdout[-8000:]
    verdicts = phases(reports)
    assert verdicts[UPGRADE] == "failed", verdicts
    later = [k for k in verdicts if k > UPGRADE]
    assert later and all(verdicts[k] == "skipped" for k in later), verdicts
    assert "Migration from v3.0.3 to v3.1.0 failed" in result.stdout, result.stdout[-6000:]
    assert "the phase 'upgrade to the to release' failed" in result.stdout
    assert "rehearsal FAILED" in result.stdout


def assert_logged_error_fails_upgrade(result: subprocess.CompletedProcess[str], reports: Path) -> None:
    """The new server came up Ready and reported its version, yet the upgrade phase failed quoting the migration
    error of its start-up log, and every later phase was skipped."""
    assert result.returncode == 1, result.stdout[-8000:]
    verdicts = phases(reports)
    assert verdicts[UPGRADE] == "failed", verdicts
    later = [k for k in verdicts if k > UPGRADE]
    assert later and all(verdicts[k] == "skipped" for k in later), verdicts
    assert "is Ready and reports its version, but its start-up log has 2 error line(s)" in result.stdout, \
        result.stdout[-6000:]
    assert re.search(r"ERROR \[Microservices:DatabaseRepository\] Kysely migrations failed: error: ", result.stdout)
    assert re.search(r'WARN \[Microservices:DatabaseRepository\] Migration "[^"]+" failed', result.stdout)
    assert "rehearsal FAILED" in result.stdout
