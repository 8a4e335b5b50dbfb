"""``rehearse --restore`` without a deployment: its options refused before anything starts, what the comparison
before/after an upgrade names, the psql access's quoting, and the library copy (the user's folder only read)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from immich_conformance.backups import IntegrityFindings, tree_state
from immich_conformance.backups.sql_access import PsqlConnection
from immich_conformance.rehearsal.deployments import ContainersDeployment
from immich_conformance.rehearsal.releases import RehearsalError
from immich_conformance.rehearsal.restored import AlbumState, RestoredState, RestoreRequest, compare, place_library

DUMP = ("--\n-- PostgreSQL database dump\n--\n-- Dumped from database version 15.18\n"
        "-- Dumped by pg_dump version 15.18\n")


def _backup(tmp_path: Path, text: str = DUMP) -> Path:
    tmp_path.mkdir(exist_ok=True)
    path = tmp_path / "immich-db-backup-20261203T020000-v3.0.3-pg15.18.sql.gz"
    path.write_bytes(gzip.compress(text.encode()))
    return path


def test_options_and_backups_that_cannot_restore_are_refused_before_deploying(tmp_path: Path) -> None:
    local, pinned = ContainersDeployment(images="local"), ContainersDeployment(images="pinned")
    backup = _backup(tmp_path)
    with pytest.raises(RehearsalError, match="--library-sample N needs --library DIR"):
        RestoreRequest(backup, None, 3).check(local)
    with pytest.raises(RehearsalError, match="does not exist or is not a folder"):
        RestoreRequest(backup, tmp_path / "nowhere").check(local)
    with pytest.raises(RehearsalError, match="was written by the Immich API double"):
        RestoreRequest(backup).check(pinned)
    real = _backup(tmp_path / "real", DUMP + "CREATE EXTENSION IF NOT EXISTS vchord WITH SCHEMA public;\n")
    with pytest.raises(RehearsalError, match="is of a real Immich server: on containers"):
        RestoreRequest(real).check(local)
    assert RestoreRequest(real).check(pinned).real_immich  # Immich restarts inside its container: no restart needed
    cut = tmp_path / "immich-db-backup-cut.sql.gz"
    cut.write_bytes(backup.read_bytes()[:-12])
    with pytest.raises(RehearsalError, match="cut short"):
        RestoreRequest(cut).check(local)
    assert RestoreRequest(backup).check(local).immich_version == "v3.0.3"


def _state(albums: dict[str, AlbumState], missing: list[str] | None = None) -> RestoredState:
    findings = IntegrityFindings({"missing_file": len(missing or [])}, {"missing_file": missing or []})
    return RestoredState(["a@x.test", "b@x.test"], albums, findings)


def test_the_comparison_names_what_the_upgrade_lost() -> None:
    album = AlbumState("Holidays", "a@x.test", ["a@x.test (owner)", "b@x.test (editor)"], 3)
    before = _state({"1": album, "2": AlbumState("Cats", "b@x.test", ["b@x.test (owner)"], 1)},
                    ["upload/old-loss.jpg"])
    assert compare(before, before) == []
    after = _state({"1": AlbumState("Holidays", "a@x.test", ["a@x.test (owner)"], 2)},
                   ["upload/old-loss.jpg", "upload/new-loss.jpg"])
    after.users = ["a@x.test"]
    problems = compare(before, after)
    assert problems == [
        "user b@x.test is gone after the upgrade",
        "album 'Cats' of b@x.test (2) is gone after the upgrade",
        "album 'Holidays' of a@x.test (1) lost its member(s) b@x.test (editor) in the upgrade",
        "album 'Holidays' of a@x.test (1) had 3 asset(s), now 2",
        "1 new missing file(s) after the upgrade: upload/new-loss.jpg",
    ]


def test_without_checks_before_the_upgrade_only_findings_on_the_copy_are_new() -> None:
    """A from-release without integrity checks (before v3): the files of the copy were served byte for byte before
    the upgrade, so a finding on one of them is new; a file left out of a sample is missing by design."""
    album = AlbumState("Holidays", "a@x.test", ["a@x.test (owner)"], 2)
    before = RestoredState(["a@x.test", "b@x.test"], {"1": album}, None)
    after = _state({"1": album}, ["upload/left-out-of-the-sample.jpg", "upload/copied.jpg"])
    assert compare(before, after, copied=["upload/copied.jpg", "upload/other.jpg"]) == [
        "1 new missing file(s) after the upgrade: upload/copied.jpg"]
    assert compare(before, _state({"1": album}, ["upload/left-out-of-the-sample.jpg"]),
                   copied=["upload/copied.jpg"]) == []


def test_psql_parameters_are_quoted_as_literals() -> None:
    sent: list[str] = []
    connection = PsqlConnection(lambda query: sent.append(query) or 'x,"a,b"\n\ny,\n')
    rows = connection.execute("SELECT %s, %s, %s WHERE n <= %s", ("o'k", b"\x01", ["all"], 2)).fetchall()
    assert sent == ["SELECT 'o''k',  E'\\\\001'::bytea, '{all}' WHERE n <= 2"]
    assert rows == [("x", "a,b"), ("y", "")]


def test_the_copy_takes_only_the_sample_and_leaves_the_library_as_it_was(tmp_path: Path) -> None:
    library, nas = tmp_path / "library", tmp_path / "nas"
    for rel in ("upload/u1/a.jpg", "upload/u1/b.jpg", "upload/u2/c.jpg", "backups/immich-db-backup-1.sql.gz"):
        (library / rel).parent.mkdir(parents=True, exist_ok=True)
        (library / rel).write_bytes(rel.encode())
    nas.mkdir()
    before = tree_state(library)
    assert place_library(library, nas, ["upload/u1/a.jpg", "upload/u2/c.jpg"]) == ["upload/u1/a.jpg",
                                                                                  "upload/u2/c.jpg"]
    assert not (nas / "upload/u1/b.jpg").exists()
    assert place_library(library, nas, None) == ["upload/u1/a.jpg", "upload/u1/b.jpg", "upload/u2/c.jpg"]
    assert not (nas / "backups").exists()
    assert tree_state(library) == before
