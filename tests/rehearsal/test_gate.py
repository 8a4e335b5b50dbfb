"""The pre-upgrade gate tested on itself, on the offline cluster: a good upgrade passes; a release whose start-up
migration silently drops an asset fails the rehearsal, which names that asset."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from immich_conformance import REPO_ROOT

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="the offline cluster runs as root (run the suite as root)"),
]


def rehearse(reports: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "immich_conformance.cli", "rehearse", "--cluster", "offline", "--reports",
         str(reports), *extra],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=3600,
    )


def phases(reports: Path) -> dict[str, str]:
    verdicts = {}
    for case in ET.parse(reports / "rehearsal.xml").getroot().iter("testcase"):
        outcome = "failed" if case.find("failure") is not None or case.find("error") is not None else (
            "skipped" if case.find("skipped") is not None else "passed")
        verdicts[case.get("name")] = outcome
    return verdicts


def test_a_good_upgrade_passes_every_phase(tmp_path: Path) -> None:
    result = rehearse(tmp_path)
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-3000:]
    verdicts = phases(tmp_path)
    assert [v for k, v in verdicts.items() if not k.startswith("test_7")] == ["passed"] * 6, verdicts
    assert "rehearsal PASSED" in result.stdout
    assert (tmp_path / "rehearsal.html").is_file()


def test_a_release_that_loses_an_asset_fails_and_names_it(tmp_path: Path) -> None:
    result = rehearse(tmp_path, "--to", "v3.1.0-drop-one-asset-on-upgrade")
    assert result.returncode == 1, result.stdout[-8000:]
    verdicts = phases(tmp_path)
    assert verdicts["test_5_verify_the_seeded_assets"] == "failed", verdicts
    assert verdicts["test_4_upgrade_to_the_to_release"] == "passed", verdicts
    named = re.search(r"asset ([0-9a-f-]{36}) is gone", result.stdout)
    assert named, result.stdout[-6000:]
    assert "rehearsal FAILED" in result.stdout
