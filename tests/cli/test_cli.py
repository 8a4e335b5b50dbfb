"""The immich-conformance command, as a person runs it."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from immich_conformance import REPO_ROOT
from immich_conformance.cli import build_parser
from immich_conformance.procs import GiveUp, wait_until

CLI = [sys.executable, "-m", "immich_conformance.cli"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)


def test_check_stack_passes_on_the_shipped_overlays() -> None:
    result = run("check-stack", "--example-secrets", "--skip-checkov")
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^k3s: \d+ objects rendered, ok$", result.stdout, re.M)
    assert re.search(r"^kind: \d+ objects rendered, ok$", result.stdout, re.M)


def test_check_stack_names_an_unknown_overlay() -> None:
    result = run("check-stack", "no-such-overlay", "--skip-checkov")
    assert result.returncode == 1
    assert "no overlay 'no-such-overlay'" in result.stderr
    assert "Traceback" not in result.stderr


def test_sandbox_serves_until_terminated_and_leaves_nothing(tmp_path: Path) -> None:
    workdir = tmp_path / "sandbox"
    proc = subprocess.Popen([*CLI, "sandbox", "--workdir", str(workdir)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=REPO_ROOT)
    lines: list[str] = []

    def lan_url() -> str | None:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line and proc.poll() is not None:
            raise GiveUp(f"the sandbox command exited with {proc.returncode}:\n{''.join(lines)}")
        lines.append(line)
        match = re.match(r"LAN \(the NodePort\):\s+(\S+)", line)
        return match.group(1) if match else None

    try:
        url = wait_until(lan_url, timeout=60, what="the sandbox endpoints printed")
        assert httpx.get(f"{url}/api/server/ping", timeout=5).json() == {"res": "pong"}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode == 0, "".join(lines)
    assert not workdir.exists(), "the sandbox folder was left behind"
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(workdir) not in ps, "a sandbox process outlived the command"


@pytest.mark.parametrize("argv", [
    ["doctor", "--nas", "/mnt/nas"],  # would be --nas-fstype
    ["rehearse", "--locust", "30"],  # would be --locust-seconds
    ["verify-backup", "backup.sql.gz", "--lib", "/mnt/nas"],  # would be --library
], ids=["doctor", "rehearse", "verify-backup"])
def test_an_option_must_be_spelled_out(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args(argv)
    assert stopped.value.code == 2
    assert f"unrecognized arguments: {' '.join(argv[-2:])}" in capsys.readouterr().err
