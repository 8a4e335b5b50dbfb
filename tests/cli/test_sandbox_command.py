"""``immich-conformance sandbox`` as a script or a person meets it: every stop signal stops it cleanly (also in a
shell's background job, which inherits SIGINT ignored), a bad work folder is named with what is wrong, and the file
holding the service token's secret is its owner's alone."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from immich_conformance import REPO_ROOT
from immich_conformance.procs import GiveUp, wait_until

CLI = [sys.executable, "-m", "immich_conformance.cli", "sandbox"]


def start_in_background(workdir: Path) -> tuple[subprocess.Popen[str], list[str]]:
    """The command as `immich-conformance sandbox &` starts it from a script: SIGINT ignored."""
    proc = subprocess.Popen([*CLI, "--workdir", str(workdir)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, cwd=REPO_ROOT, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    lines: list[str] = []

    def ready() -> bool:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line and proc.poll() is not None:
            raise GiveUp(f"the sandbox command exited with {proc.returncode}:\n{''.join(lines)}")
        lines.append(line)
        return bool(re.match(r"LAN \(the NodePort\):", line))

    wait_until(ready, timeout=60, what="the sandbox endpoints printed")
    return proc, lines


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGHUP, signal.SIGTERM], ids=["INT", "HUP", "TERM"])
def test_each_stop_signal_stops_the_background_sandbox_cleanly(tmp_path: Path, signum: signal.Signals) -> None:
    workdir = tmp_path / "sandbox"
    proc, lines = start_in_background(workdir)
    try:
        edge = workdir / "edge.json"
        assert "client_secret" in edge.read_text()
        assert edge.stat().st_mode & 0o777 == 0o600, "the service token's secret is readable by others"
    finally:
        proc.send_signal(signum)
        proc.wait(timeout=30)
    assert proc.returncode == 0, "".join(lines)
    assert not workdir.exists(), "the sandbox folder was left behind"
    assert str(workdir) not in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)


def test_a_work_folder_that_is_a_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_text("x")
    result = run("--workdir", str(path))
    assert result.returncode == 2
    assert result.stderr.strip() == f"immich-conformance sandbox: the sandbox folder {path} is a file, not a " \
                                    "folder: give a new or empty folder"


@pytest.mark.skipif(os.geteuid() != 0, reason="a read-only mount needs root")
def test_a_read_only_work_folder_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)], check=True)
    try:
        result = run("--workdir", str(folder))
    finally:
        subprocess.run(["umount", str(folder)], check=True)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"the sandbox folder {folder} cannot be written (Read-only file system)" in result.stderr
    assert "Traceback" not in result.stderr
