"""The pre-upgrade workflow users run cannot run here: it is validated statically."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from immich_conformance import REPO_ROOT, STACK_DIR
from immich_conformance.cli import build_parser

WORKFLOW = REPO_ROOT / ".github" / "workflows" / "pre-upgrade.yml"
ACTIONLINT = REPO_ROOT / ".tools" / "bin" / "actionlint"


def actionlint() -> str:
    found = str(ACTIONLINT) if ACTIONLINT.is_file() else shutil.which("actionlint")
    if not found:
        pytest.fail("actionlint is not installed: run ./setup.sh (it builds it from the Go module proxy)")
    return found


def steps() -> list[dict]:
    doc = yaml.safe_load(WORKFLOW.read_text())
    return [step for job in doc["jobs"].values() for step in job["steps"]]


def test_actionlint_finds_nothing() -> None:
    result = subprocess.run([actionlint(), str(WORKFLOW)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_would_catch_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("runs-on: ubuntu-24.04", "runs-on: [ubuntu-24.04\n"))
    assert subprocess.run([actionlint(), str(broken)], capture_output=True, timeout=60).returncode != 0


def test_every_action_is_pinned_to_a_commit() -> None:
    uses = [step["uses"] for step in steps() if "uses" in step]
    assert uses
    for ref in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", ref), f"{ref} is not pinned to a full commit SHA"


def test_it_runs_on_changes_of_the_pinned_release() -> None:
    doc = yaml.safe_load(WORKFLOW.read_text())
    trigger = doc.get("on") or doc.get(True)
    assert "stack/base/kustomization.yaml" in trigger["pull_request"]["paths"]


def test_what_it_calls_exists() -> None:
    text = WORKFLOW.read_text()
    overlay = re.search(r"--overlay (\S+)", text).group(1)
    assert (STACK_DIR / "overlays" / overlay / "kustomization.yaml").is_file()
    assert (REPO_ROOT / "stack" / "kind" / "cluster.yaml").is_file()
    command = re.search(r"immich-conformance rehearse (.+?)--reports (\S+)", text, re.S)
    argv = ["rehearse", *command.group(1).replace("\\", " ").split(), "--reports", command.group(2)]
    argv = [a.replace('"$BASE"', "base").replace('"$HEAD"', "head") for a in argv]
    args = build_parser().parse_args(argv)
    assert (args.overlay, args.ref_from, args.ref_to, args.locust_seconds) == ("kind-edge-standin", "base", "head", 60)
