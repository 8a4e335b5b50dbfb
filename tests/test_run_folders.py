"""A run's temporary folders: marked as its maker's; removed by a later run once that maker is gone, and only then;
never a folder without the mark."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from immich_conformance import run_folders
from immich_conformance.containers import run_folder
from immich_conformance.procs import process_identity

PREFIX = "run-folders-test-"


def made_by_a_process_now_gone(parent: Path, prefix: str = PREFIX) -> Path:
    """A folder marked by a child process that has exited since."""
    code = f"from pathlib import Path; from immich_conformance import run_folders; " \
           f"print(run_folders.make({prefix!r}, Path({str(parent)!r})))"
    made = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    folder = Path(made.stdout.strip())
    (folder / "data").mkdir()
    (folder / "data" / "file").write_text("left behind")
    return folder


def test_a_folder_whose_maker_is_gone_is_removed_and_said(tmp_path: Path) -> None:
    left = made_by_a_process_now_gone(tmp_path)
    removed = run_folders.sweep(PREFIX, tmp_path)
    assert removed == [left] and not left.exists()
    line = run_folders.said(removed)
    assert str(left) in line and "\n" not in line
    assert run_folders.said([]) == ""


def test_a_folder_whose_maker_runs_stays(tmp_path: Path) -> None:
    mine = run_folders.make(PREFIX, tmp_path)
    assert (mine / run_folders.MARK).read_text().startswith(process_identity() + " ")
    assert run_folders.sweep(PREFIX, tmp_path) == [] and mine.is_dir()


def test_what_carries_no_mark_is_never_touched(tmp_path: Path) -> None:
    someone_elses = tmp_path / f"{PREFIX}theirs"
    someone_elses.mkdir()
    (someone_elses / "photo.jpg").write_bytes(b"\xff\xd8")
    a_file = tmp_path / f"{PREFIX}file"
    a_file.write_text("not a folder")
    kept = made_by_a_process_now_gone(tmp_path)
    run_folders.unmark(kept)
    other_name = made_by_a_process_now_gone(tmp_path).rename(tmp_path / "another-prefix")
    assert run_folders.sweep(PREFIX, tmp_path) == []
    assert all(path.exists() for path in (someone_elses / "photo.jpg", a_file, kept / "data", other_name))


def test_a_folder_marked_in_another_process_namespace_stays(tmp_path: Path) -> None:
    """Its maker's id means nothing here: a dead-looking id may be a live process of a container sharing /tmp."""
    folder = made_by_a_process_now_gone(tmp_path)
    mark = folder / run_folders.MARK
    identity = mark.read_text().split(" ")[0]
    mark.write_text(f"{identity} pid:[1]\n")
    assert run_folders.sweep(PREFIX, tmp_path) == [] and folder.exists()
    mark.write_text(f"{identity} {os.readlink('/proc/self/ns/pid')}\n")
    assert run_folders.sweep(PREFIX, tmp_path) == [folder]


def test_a_containers_run_removes_the_work_folder_a_killed_one_left(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    left = made_by_a_process_now_gone(tmp_path, run_folder.PREFIX)
    notes: list[str] = []
    workdir = run_folder.create(notes.append)
    assert not left.exists() and len(notes) == 1 and str(left) in notes[0], notes
    assert workdir.is_dir() and workdir.parent == tmp_path and (workdir / run_folders.MARK).is_file()
