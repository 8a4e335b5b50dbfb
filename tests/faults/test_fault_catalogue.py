"""The fault catalogue as tests: each fault injected into a real run, which must end in its one-line diagnosis and a
non-zero exit, lose nothing that was answered 201, and leave nothing behind after the next run."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from immich_conformance import REPO_ROOT
from immich_conformance.ledger import Ledger
from immich_conformance.procs import free_port, wait_until
from immich_conformance.targets.sandbox import Sandbox
from immich_conformance.targets.sandbox_nas import NOT_OURS
from loadtests.target_settings import ENV_API_KEY, ENV_EXTERNAL_URL, ENV_TOKEN_ID, ENV_TOKEN_SECRET

from ..loadtests import not_about_speed
from ..loadtests.test_faults import count, sandbox_environment, start_locust
from .catalogue import CATALOGUE, Fault, fill

FAULT_AT = 3
"""The scenario at whose start the fault is injected: the two before it upload a photo each, answered 201."""
SCENARIOS = ("-m", "uploads or bodies")
NEXT_RUN = ("-k", "lands_on_the_nas")
FEATURES = [f for f in CATALOGUE if f.harness == "features"]
LOAD = [f for f in CATALOGUE if f.harness == "load"]


def test_the_catalogue_names_each_fault_once_and_covers_both_runs() -> None:
    names = [f.name for f in CATALOGUE]
    assert len(set(names)) == len(names)
    assert {f.harness for f in CATALOGUE} == {"features", "load"}
    assert all(f.injected and f.diagnosis for f in CATALOGUE)


def pytest_features(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "features/", "-p", "no:cacheprovider", "-q", *args],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})})


def outcome_counts(out: str) -> dict[str, int]:
    last = out.strip().splitlines()[-1]
    return {word.rstrip("s"): int(n) for n, word in re.findall(r"(\d+) (failed|passed|errors?)\b", last)}


def diagnosis(fault: Fault, nas: Path) -> re.Pattern[str]:
    return re.compile(fault.diagnosis.replace("{nas}", re.escape(str(nas))))


def sha1_base64(path: Path) -> str:
    return base64.b64encode(hashlib.sha1(path.read_bytes()).digest()).decode()


def nas_entries(nas: Path) -> list[str]:
    return sorted(p.name for p in nas.iterdir() if p.name not in NOT_OURS)


def assert_nothing_lost(workdir: Path, nas: Path) -> None:
    """Every upload the run's ledger holds as answered 201 and not deleted by the run has its file on the NAS, byte
    for byte (the run could not delete it, so it must still be there)."""
    lines = [json.loads(line) for line in (workdir / "ledger.jsonl").read_text().splitlines()] \
        if (workdir / "ledger.jsonl").exists() else []
    if not lines:
        return  # every upload of the run was deleted by the run itself (the ledger is removed once settled)
    target_id = lines[0]["target"]
    undeleted = [e for e in Ledger(workdir / "ledger.jsonl", target_id).leftovers() if e.asset_id]
    on_nas = {sha1_base64(p) for p in (nas / "upload").rglob("*") if p.is_file() and p.name != ".immich"}
    lost = [e.asset_id for e in undeleted if e.checksum not in on_nas]
    assert not lost, f"uploads answered 201 whose files are gone from the NAS: {lost}"


@pytest.mark.slow
@pytest.mark.parametrize("fault", FEATURES, ids=[f.name for f in FEATURES])
def test_a_fault_in_a_scenario_run(fault: Fault, nas_folder: Path, tmp_path: Path) -> None:
    kept, done = tmp_path / "tmp", tmp_path / "fault-done"
    kept.mkdir()
    env = {"FAULT_INJECT": fault.inject, "FAULT_AT": str(FAULT_AT), "FAULT_DONE": str(done), "TMPDIR": str(kept)}
    run = pytest_features(*SCENARIOS, "-p", "tests.faults.fault_plugin", "--sandbox-nas", str(nas_folder),
                          "--keep-sandbox", "-rfE", env=env)
    out = run.stdout + run.stderr
    assert done.exists(), f"the fault was not injected:\n{out[-4000:]}"
    assert run.returncode == 1, out[-4000:]
    counts = outcome_counts(run.stdout)
    broken = counts.get("failed", 0) + counts.get("error", 0)
    assert counts.get("passed", 0) >= FAULT_AT - 1 and broken >= 1, out[-4000:]
    line = diagnosis(fault, nas_folder)
    said = re.findall(rf"^{line.pattern}$", run.stdout, re.MULTILINE)
    assert len(said) >= broken, f"not every failure says in one line: {line.pattern}\n{out[-6000:]}"
    assert "Traceback" not in out and "ConnectError" not in out, out[-6000:]

    workdirs = list(kept.glob("immich-sandbox-*"))
    assert len(workdirs) == 1, workdirs
    try:
        assert_nothing_lost(workdirs[0], nas_folder)
    finally:
        shutil.rmtree(workdirs[0], ignore_errors=True)
    # the fault goes away (a person fixes the NAS); the next run finds the first one's files and removes them
    if fault.inject == "readonly":
        subprocess.run(["mount", "-o", "remount,bind,rw", str(nas_folder)], check=True)
    (nas_folder.parent / "filler").unlink(missing_ok=True)
    assert nas_entries(nas_folder), "the kept run left nothing on the NAS: the next run proves nothing"

    again = pytest_features(*NEXT_RUN, "--sandbox-nas", str(nas_folder), env={"TMPDIR": str(kept)})
    assert again.returncode == 0, again.stdout[-4000:] + again.stderr[-2000:]
    assert re.search(rf"the NAS folder {re.escape(str(nas_folder))} held [1-9]\d* files an earlier sandbox left",
                     again.stdout), again.stdout[-4000:]
    assert nas_entries(nas_folder) == [], "the next run left files on the NAS"
    assert list(kept.iterdir()) == [], "the next run left its work folder (and the ledger in it) behind"


def test_nothing_listening_stops_the_load_test_before_any_user(tmp_path: Path) -> None:
    fault = next(f for f in LOAD if f.inject == "nothing")
    lan, external = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    summary, ledger = tmp_path / "summary.json", tmp_path / "ledger.jsonl"
    environ = {ENV_API_KEY: "key", ENV_EXTERNAL_URL: external, ENV_TOKEN_ID: "id", ENV_TOKEN_SECRET: "secret"}
    run = start_locust(tmp_path / "run", environ, "--host", lan, "--headless", "-u", "2", "-r", "2", "-t", "20s",
                       "--summary-json", str(summary), "--ledger", str(ledger))
    assert run.wait(timeout=60) == 1, run.explain()
    assert re.search(rf"^  - {fault.diagnosis}$", run.stderr, re.MULTILINE), run.explain()
    assert "Traceback" not in run.stdout + run.stderr, run.explain()
    result = json.loads(summary.read_text())
    assert result["verdict"] == "failed" and result["requests"] == 0, result
    assert not ledger.exists(), "a run that sent nothing left a ledger"


@pytest.mark.slow
@pytest.mark.parametrize("fault", [f for f in LOAD if f.inject == "fill"], ids=lambda f: f.name)
def test_a_full_nas_under_load_is_named_and_loses_nothing(fault: Fault, nas_folder: Path, tmp_path: Path) -> None:
    ledger, summary = tmp_path / "ledger.jsonl", tmp_path / "summary.json"
    with Sandbox(nas=nas_folder) as sandbox:
        environ = sandbox_environment(sandbox)
        common = ("--host", sandbox.lan.url, "--headless", "-u", "2", "-r", "2", "--upload-sizes", "4KiB",
                  "--lan-weight", "1", "--external-weight", "1", "--browse-weight", "0", "--oversize-weight", "0",
                  "--ledger", str(ledger), *not_about_speed.ARGS)
        run = start_locust(tmp_path / "run", environ, *common, "-t", "6s", "--summary-json", str(summary))
        try:
            wait_until(lambda: count(ledger, "created") >= 10, timeout=60, what="10 uploads answered 201")
            filler = fill(sandbox.nas)
            code = run.wait(timeout=120)
        finally:
            if run.proc.poll() is None:
                run.proc.kill()
        assert code == 1, run.explain()
        assert "Traceback" not in run.stdout + run.stderr, run.explain()
        result = json.loads(summary.read_text())
        line = diagnosis(fault, sandbox.nas)
        assert any(line.match(b) for b in result["broken"]), result["broken"]
        assert re.search(rf"^  - {line.pattern} \(\d+ uploads failed\)$", run.stdout, re.MULTILINE), run.explain()
        assert result["lost"] == 0 and result["corrupt"] == 0 and result["checked"] >= 10, result
        assert result["leftovers"]["remaining"] == 0, result["leftovers"]

        filler.unlink()
        again = start_locust(tmp_path / "again", environ, *common, "-t", "2s")
        assert again.wait(timeout=60) == 0, again.explain()
        assert f"no uploads left by an earlier run against {sandbox.lan.url}" in again.stderr, again.explain()
        wait_until(lambda: not sandbox.nas_upload_files(), timeout=30, what="the NAS emptied of the runs' uploads")
    assert nas_entries(nas_folder) == [], "the sandbox left files on its NAS"
