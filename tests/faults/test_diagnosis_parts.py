"""The parts behind the catalogue's lines, each without a run: what a NAS folder says when it cannot take files, how
the sandbox claims and empties a NAS folder it is given, and a clean-up that does not call an unanswered asset gone."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from immich_conformance import nas_health
from immich_conformance.asset_removal import remove_assets
from immich_conformance.targets import sandbox_nas
from immich_conformance.targets.sandbox_nas import MARK, NasFolderError

from .conftest import bind_mounted


def test_a_folder_that_takes_files_has_no_problem(tmp_path: Path) -> None:
    assert nas_health.nas_problem(tmp_path) is None
    assert list(tmp_path.iterdir()) == [], "the write probe was left behind"


def test_a_read_only_mount_is_named_with_its_fix(tmp_path: Path) -> None:
    with bind_mounted(tmp_path / "nas") as nas:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(nas)], check=True)
        said = nas_health.nas_problem(nas)
        assert said == (f"the NAS folder {nas} is read-only (its filesystem is mounted read-only): Immich cannot "
                        "store uploads there (it answers 500 and logs EROFS); mount it read-write")
        assert nas_health.nas_problem(nas, probe=False) == said


def test_a_full_filesystem_is_named_with_what_is_free(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.statvfs(tmp_path)
    full = os.statvfs_result((real.f_bsize, 1024, 20480, 100, 100, *real[5:]))
    monkeypatch.setattr(nas_health.os, "statvfs", lambda path: full)
    said = nas_health.nas_problem(tmp_path)
    assert said is not None and said.startswith(f"the NAS folder {tmp_path} is full (no space left on device), "
                                                "100 KiB free of 20 MiB: ")
    assert said.endswith("(it answers 500 and logs ENOSPC); free space on it or give a larger one")


@pytest.mark.parametrize("log", ["Error: ENOSPC: no space left on device, write",
                                 "OSError: [Errno 28] No space left on device"])
def test_a_write_error_in_the_servers_log_is_named(tmp_path: Path, log: str) -> None:
    said = nas_health.log_problem(tmp_path, f"[Nest] 1 - ... ERROR {log}\n")
    assert said is not None and said.startswith(f"the NAS folder {tmp_path} ran out of space (")
    assert nas_health.log_problem(tmp_path, "POST /api/assets 201\n") is None


def test_a_nas_folder_that_is_a_file_or_someone_elses_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(NasFolderError, match="is a file, not a folder"):
        sandbox_nas.check(tmp_path / "file")
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "photo.jpg").write_text("x")
    with pytest.raises(NasFolderError, match="is not empty and no sandbox left it so"):
        sandbox_nas.check(tmp_path / "theirs")
    assert (tmp_path / "theirs" / "photo.jpg").exists()


def test_what_an_earlier_sandbox_left_is_removed_and_counted(tmp_path: Path) -> None:
    nas = tmp_path / "nas"
    (nas / "lost+found").mkdir(parents=True)
    (nas / "upload" / "u").mkdir(parents=True)
    (nas / "upload" / "u" / "a.jpg").write_text("a")
    (nas / "upload" / ".immich").write_text("")
    (nas / MARK).write_text("")
    assert sandbox_nas.check(nas) == nas.resolve()
    said: list[str] = []
    sandbox_nas.claim(nas, said.append)
    assert said == [f"the NAS folder {nas} held 2 files an earlier sandbox left (it stopped before it could empty "
                    "it): removed"]
    assert sorted(p.name for p in nas.iterdir()) == [MARK, "lost+found"]
    (nas / "library").mkdir()
    assert sandbox_nas.empty(nas) is None
    assert [p.name for p in nas.iterdir()] == ["lost+found"]


@dataclass
class FakeClient:
    """Answers GET /api/assets/{id} with ``statuses[id]`` and records deletes."""

    statuses: dict[str, int]
    deleted: list[list[str]] = field(default_factory=list)

    def asset(self, asset_id: str) -> Any:
        status = self.statuses[asset_id]
        return SimpleNamespace(status_code=status, json=lambda: {"originalPath": f"/nas/{asset_id}.jpg"})

    def delete_assets(self, ids: list[str], force: bool = True) -> Any:
        self.deleted.append(ids)
        return SimpleNamespace(status_code=204, text="")

    def close(self) -> None:
        pass


def test_an_asset_the_server_cannot_look_up_is_not_taken_as_gone(tmp_path: Path) -> None:
    client = FakeClient({"gone": 400, "broken": 500})
    target = SimpleNamespace(lan=SimpleNamespace(client=lambda key: client), api_key="k",
                             nas_path=lambda path: tmp_path / Path(path).name, storage_problem=lambda: None)
    removal = remove_assets(target, ["gone", "broken"], timeout=1)  # type: ignore[arg-type]
    assert removal.left == ["broken (GET /api/assets/{id} answered 500)"], removal.left
    assert client.deleted == []
