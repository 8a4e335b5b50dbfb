"""The load test when something dies or is mis-set: it says so plainly, loses nothing, leaves nothing.

The sandbox here belongs to the test process (not to locust), so it outlives a locust killed with SIGKILL and can
be broken mid-run; locust reaches it with --host and the environment, like a cluster or live deployment.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from immich_conformance import REPO_ROOT
from immich_conformance.ledger import Ledger
from immich_conformance.procs import free_port, wait_until
from immich_conformance.targets.sandbox import PUBLIC_HOSTNAME, Sandbox
from loadtests.target_settings import (
    ENV_API_KEY,
    ENV_EXTERNAL_URL,
    ENV_MEDIA_LOCATION,
    ENV_NAS_PATH,
    ENV_PUBLIC_HOSTNAME,
    ENV_TOKEN_ID,
    ENV_TOKEN_SECRET,
)

from . import not_about_speed

LOCUSTFILE = REPO_ROOT / "loadtests" / "upload.py"
UNVERIFIED = re.compile(r"(\d+) uploads verified, (\d+) could not be verified \(target unreachable")


@dataclass
class Run:
    proc: subprocess.Popen[bytes]
    out: Path
    err: Path

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    @property
    def stdout(self) -> str:
        return self.out.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def explain(self) -> str:
        return (f"exit code {self.proc.returncode}\n--- stdout ---\n{self.stdout[-4000:]}\n--- stderr ---\n"
                f"{self.stderr[-4000:]}")


def start_locust(folder: Path, environ: dict[str, str], *args: str) -> Run:
    """Locust in the background, its output in files (a pipe nobody reads could stall it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCUST_", "IMMICH_CONFORMANCE_"))}
    env.update(environ)
    folder.mkdir(parents=True, exist_ok=True)
    out, err = folder / "stdout.txt", folder / "stderr.txt"
    with out.open("wb") as o, err.open("wb") as e:
        proc = subprocess.Popen([sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), *args], cwd=REPO_ROOT,
                                env=env, stdout=o, stderr=e, stdin=subprocess.DEVNULL)
    return Run(proc, out, err)


def sandbox_environment(target: Sandbox) -> dict[str, str]:
    token = target.service_token_headers
    id_header, secret_header = list(token)
    return {
        ENV_API_KEY: target.api_key,
        ENV_EXTERNAL_URL: target.external.url,
        ENV_PUBLIC_HOSTNAME: PUBLIC_HOSTNAME,
        ENV_TOKEN_ID: token[id_header],
        ENV_TOKEN_SECRET: token[secret_header],
        ENV_NAS_PATH: str(target.nas),
        ENV_MEDIA_LOCATION: str(target.media_location),
    }


def created_lines(ledger: Path) -> list[dict[str, object]]:
    if not ledger.exists():
        return []
    lines = []
    for line in ledger.read_text().splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        lines.append(item)
    return lines


def count(ledger: Path, event: str) -> int:
    return sum(1 for item in created_lines(ledger) if item.get("event") == event)


def kill_process_group(pid: int) -> None:
    os.killpg(pid, signal.SIGKILL)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(progress=lambda message: print(f"[sandbox] {message}")) as target:
        yield target


@pytest.mark.slow
@pytest.mark.uploads
def test_a_target_that_dies_mid_run_fails_the_gate_plainly_and_keeps_its_uploads_in_the_ledger(
        sandbox: Sandbox, tmp_path: Path) -> None:
    ledger, summary = tmp_path / "ledger.jsonl", tmp_path / "summary.json"
    run = start_locust(tmp_path / "run", sandbox_environment(sandbox), "--host", sandbox.lan.url, "--headless",
                       "-u", "4", "-r", "4", "-t", "16s", "--upload-sizes", "64KiB", "--ledger", str(ledger),
                       "--summary-json", str(summary))
    try:
        wait_until(lambda: count(ledger, "created") >= 20, timeout=60, what="20 uploads before the kill")
        died_at = time.time()
        kill_process_group(sandbox._processes["immich-server"].pid)
        code = run.wait(timeout=120)
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
    output = run.stdout + run.stderr
    assert code != 0, run.explain()
    assert "Traceback" not in output, run.explain()

    result = json.loads(summary.read_text())
    assert result["verdict"] == "failed" and result["passed"] is False
    assert result["unverified"] > 0 and result["target_unreachable"], result
    assert any("could not be verified (target unreachable" in b for b in result["broken"]), result["broken"]
    said = UNVERIFIED.search(run.stdout)
    assert said, run.explain()
    assert int(said.group(2)) == result["unverified"]

    # nothing could be deleted: every upload the server answered stays in the ledger for the next run
    lines = created_lines(ledger)
    created = {item["id"] for item in lines if item.get("event") == "created"}
    left = Ledger(ledger, sandbox.lan.url).leftovers()
    assert created <= {e.asset_id for e in left}
    assert result["leftovers"]["remaining"] == len(left)

    # backoff: the users kept trying the dead target, a few times a second, not hundreds
    tries = [item for item in lines if item.get("event") == "intent" and float(item["at"]) > died_at + 0.5]
    dead_for = max(float(item["at"]) for item in lines) - died_at
    assert dead_for > 5, "the run should have gone on for a while after the kill"
    assert len(tries) / dead_for < 10, f"{len(tries)} uploads tried in the {dead_for:.1f} s the target was dead"
    assert "path does not answer" in run.stderr and "users back off" in run.stderr, run.explain()


@pytest.mark.slow
@pytest.mark.uploads
def test_a_killed_run_leaves_a_ledger_and_the_next_run_deletes_every_leftover(sandbox: Sandbox,
                                                                               tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    environ = sandbox_environment(sandbox)
    first = start_locust(tmp_path / "first", environ, "--host", sandbox.lan.url, "--headless", "-u", "4", "-r", "4",
                         "-t", "60s", "--ledger", str(ledger))
    try:
        wait_until(lambda: count(ledger, "created") >= 30, timeout=60, what="30 uploads before the kill")
    finally:
        first.proc.send_signal(signal.SIGKILL)  # mid-upload: no clean-up runs
        first.wait(timeout=30)
    left = Ledger(ledger, sandbox.lan.url).leftovers()
    with_id = [e.asset_id for e in left if e.asset_id]
    assert len(with_id) >= 30
    client = sandbox.lan.client(api_key=sandbox.api_key)
    try:
        assert all(client.asset(i).status_code == 200 for i in with_id), "the killed run's assets should be there"
        files = sandbox.nas_upload_files()
        assert len(files) >= len(with_id)

        second = start_locust(tmp_path / "second", environ, "--host", sandbox.lan.url, "--headless", "-u", "2",
                              "-r", "2", "-t", "3s", "--ledger", str(ledger), *not_about_speed.ARGS)
        assert second.wait(timeout=120) == 0, second.explain()
        said = re.search(r"(\d+) uploads left by an earlier run against (\S+) found in the ledger \S+ \((\d+) with an "
                         r"id, (\d+) without\): (\d+) still on the server, deleted", second.stderr)
        assert said, second.explain()
        assert int(said.group(1)) == len(left) and said.group(2) == sandbox.lan.url
        assert int(said.group(3)) == len(with_id)
        assert int(said.group(5)) >= len(with_id), "every asset the killed run created must be deleted"
        assert all(client.asset(i).status_code in (400, 404) for i in with_id)
    finally:
        client.close()
    wait_until(lambda: not sandbox.nas_upload_files(), timeout=30, what="every upload's file gone from the NAS")
    assert Ledger(ledger, sandbox.lan.url).leftovers() == []


def test_nothing_listening_stops_before_any_user_with_one_message(tmp_path: Path) -> None:
    lan, external = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    summary = tmp_path / "summary.json"
    environ = {ENV_API_KEY: "key", ENV_EXTERNAL_URL: external, ENV_TOKEN_ID: "id", ENV_TOKEN_SECRET: "secret"}
    started = time.monotonic()
    run = start_locust(tmp_path / "run", environ, "--host", lan, "--headless", "-u", "4", "-r", "4", "-t", "20s",
                       "--summary-json", str(summary), "--ledger", str(tmp_path / "ledger.jsonl"))
    code = run.wait(timeout=60)
    took = time.monotonic() - started
    assert code == 1, run.explain()
    assert f"the LAN path {lan} does not answer" in run.stderr, run.explain()
    assert f"the external path {external}" in run.stderr and "does not answer" in run.stderr, run.explain()
    assert "Traceback" not in run.stdout + run.stderr, run.explain()
    assert took < 20, f"the run went on for {took:.0f} s"
    result = json.loads(summary.read_text())
    assert result["verdict"] == "failed" and result["stage"] == "before the run" and result["requests"] == 0
    assert "the LAN path" in result["broken"][0]


@pytest.mark.slow
def test_a_wrong_api_key_or_service_token_is_named_before_any_user_starts(sandbox: Sandbox, tmp_path: Path) -> None:
    environ = sandbox_environment(sandbox)
    for name, broken, expected in (
        ("key", {ENV_API_KEY: "not-a-key"}, "the API key is refused on the LAN path"),
        ("token", {ENV_TOKEN_SECRET: "0" * 64}, "the edge refused the service token"),
    ):
        run = start_locust(tmp_path / name, {**environ, **broken}, "--host", sandbox.lan.url, "--headless", "-u", "2",
                           "-r", "2", "-t", "10s", "--ledger", str(tmp_path / "ledger.jsonl"))
        assert run.wait(timeout=60) == 1, run.explain()
        assert expected in run.stderr, run.explain()
        assert "Traceback" not in run.stdout + run.stderr, run.explain()
        assert not sandbox.nas_upload_files(), "no user may have started"
