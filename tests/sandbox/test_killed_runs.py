"""A sandbox killed outright (SIGKILL: no clean-up of its own runs) leaves its work folder and its database socket's
folder; the next sandbox removes them and says so. A folder kept on purpose (``keep``) is never removed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from immich_conformance import REPO_ROOT, run_folders
from immich_conformance.procs import wait_until
from immich_conformance.targets import sandbox as sandbox_module
from immich_conformance.targets.sandbox import Sandbox

STARTED_SANDBOX = """
import sys
from immich_conformance.targets.sandbox import Sandbox
sandbox = Sandbox()
sandbox.start()
print(sandbox.workdir, flush=True)
sys.stdin.read()  # until killed
"""


def _folders_of(pid: int, parent: Path, prefix: str) -> list[Path]:
    return [folder for folder in parent.glob(f"{prefix}*")
            if (folder / run_folders.MARK).is_file()
            and (folder / run_folders.MARK).read_text().startswith(f"{pid}:")]


def _processes_naming(folder: Path) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(folder) in argv:
            found.append(argv)
    return found


def test_the_next_sandbox_removes_what_a_killed_one_left(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    child = subprocess.Popen([sys.executable, "-c", STARTED_SANDBOX], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, cwd=REPO_ROOT, env={**os.environ, "TMPDIR": str(tmp_path)})
    try:
        assert child.stdout is not None
        workdir = Path(child.stdout.readline().strip())
        sockets = _folders_of(child.pid, sandbox_module.SOCKET_PARENT, sandbox_module.SOCKET_PREFIX)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    assert workdir.parent == tmp_path and (workdir / "internal-drive").is_dir(), workdir
    assert len(sockets) == 1, "the killed sandbox's socket folder is not marked as its own"
    # Its components stop when it dies (PR_SET_PDEATHSIG), the database writing its last files as it goes.
    wait_until(lambda: not _processes_naming(workdir), timeout=30, what="the killed sandbox's components stopped")

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    notes: list[str] = []
    sandbox = Sandbox(progress=notes.append)
    try:
        assert not workdir.exists() and not sockets[0].exists()
        said = [note for note in notes if "killed before their end" in note]
        assert said and str(workdir) in " ".join(said) and str(sockets[0]) in " ".join(said), notes
        assert sandbox.workdir.is_dir(), "the new sandbox swept its own folder"
    finally:
        sandbox.close()
    assert not sandbox.workdir.exists()


def test_a_kept_work_folder_is_never_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    kept = Sandbox(keep=True)
    kept.close()
    assert kept.workdir.is_dir() and not (kept.workdir / run_folders.MARK).exists()
    Sandbox().close()
    assert kept.workdir.is_dir(), "a kept work folder was removed by the next sandbox"
