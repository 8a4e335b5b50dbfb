"""A sandbox killed outright (SIGKILL: no clean-up of its own runs) leaves its work folder and its database socket's
folder; the next sandbox removes them and says so. A folder kept on purpose (``keep``) is never removed. A database
server killed outright (a fault the suite injects) leaves no shared memory once stopped."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from immich_conformance import REPO_ROOT, run_folders
from immich_conformance.postgres import LocalPostgres
from immich_conformance.postgres_memory import server_of, shared_memory_segments
from immich_conformance.procs import free_port, wait_until
from immich_conformance.targets import sandbox as sandbox_module
from immich_conformance.targets.sandbox import Sandbox

STARTED_SANDBOX = """
import sys
from pathlib import Path
from immich_conformance.targets import sandbox as sandbox_module
sandbox_module.SOCKET_PARENT = Path(sys.argv[1])
sandbox = sandbox_module.Sandbox()
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


@pytest.fixture
def socket_parent(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A socket parent of the test's own, short as a socket's path must be: in the shared one, a sandbox starting in
    another worker between the kill and the next sandbox would remove the killed run's folder (rightly) and say so in
    its own notes, not in this test's."""
    parent = Path(tempfile.mkdtemp(prefix="ickr", dir=sandbox_module.SOCKET_PARENT))
    monkeypatch.setattr(sandbox_module, "SOCKET_PARENT", parent)
    yield parent
    shutil.rmtree(parent, ignore_errors=True)


def test_the_next_sandbox_removes_what_a_killed_one_left(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         socket_parent: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", STARTED_SANDBOX, str(socket_parent)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT,
                             env={**os.environ, "TMPDIR": str(tmp_path)})
    try:
        assert child.stdout is not None
        workdir = Path(child.stdout.readline().strip())
        sockets = _folders_of(child.pid, socket_parent, sandbox_module.SOCKET_PREFIX)
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


def _dynamic_shared_memory_of(postmaster: int) -> set[str]:
    """The dynamic shared memory segments the server's processes have mapped (PostgreSQL names them
    ``pg_dynshmem/mmap.<handle>`` in its data folder, or ``/dev/shm/PostgreSQL.<handle>``). Read from the server's own
    maps, not from /dev/shm, where another server starting at the same moment (an ``initdb`` in another worker) makes
    files of its own."""
    found = set()
    server = psutil.Process(postmaster)
    for process in [server, *server.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            found |= {m.path for m in process.memory_maps() if "pg_dynshmem" in m.path or "/PostgreSQL." in m.path}
    return found


def test_a_database_server_killed_outright_leaves_no_shared_memory(tmp_path: Path) -> None:
    socket_dir = run_folders.make(sandbox_module.SOCKET_PREFIX, sandbox_module.SOCKET_PARENT)
    postgres = LocalPostgres(tmp_path / "data", free_port(), tmp_path / "postgres.log", socket_dir=socket_dir / "s")
    try:
        postgres.start()
        assert postgres.query("SHOW dynamic_shared_memory_type") == [("mmap",)]
        server = server_of(tmp_path / "data")
        assert server is not None, "a started server has written its postmaster.pid"
        postmaster, key, shmid = server
        segments = _dynamic_shared_memory_of(postmaster)
        assert segments, "the server's dynamic shared memory was not found in its maps: this test shows nothing"
        outside = sorted(s for s in segments if not s.startswith(f"{tmp_path / 'data'}/"))
        assert outside == [], f"the server keeps dynamic shared memory outside its data folder: {outside}"
        assert any(segment[:2] == (key, shmid) for segment in shared_memory_segments())
        assert postgres.process is not None
        os.killpg(postgres.process.pid, signal.SIGKILL)
        wait_until(lambda: not postgres.running(), timeout=10, what="the database server gone")
        assert any(segment[:2] == (key, shmid) for segment in shared_memory_segments()), \
            "the killed server's segment is gone already: this test no longer shows anything"
    finally:
        postgres.stop()
        shutil.rmtree(socket_dir, ignore_errors=True)
    assert not any(segment[:2] == (key, shmid) for segment in shared_memory_segments()), \
        "the killed server's System V segment outlives it"
