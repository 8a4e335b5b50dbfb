"""``rehearse --restore`` and ``verify-backup`` with ``--runtime containers --images local``, from a backup the double
wrote by its own job on a seeded library: a good upgrade passes every phase on a sample of the library; a to-release
whose migration drops an album's members, or an asset, fails the check after the upgrade, naming the album or the
asset; the backup verifies in containers, and a damaged library copy fails naming its files as Immich's integrity
checks report them (paths under the container's media location). The user's library folder and backup are never
changed (paths, sizes and modification times compared), and nothing is left behind."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from immich_conformance import REPO_ROOT
from immich_conformance.backups import tree_state
from immich_conformance.rehearsal.seed_backup import seed_backup

from ..rehearsal.gate_runs import UPGRADE, phases, rehearse
from .leftovers import assert_nothing_left

pytestmark = pytest.mark.slow
LOCAL = ("--runtime", "containers", "--images", "local")
AFTER = "test_5_check_the_restored_library_after_the_upgrade"


@pytest.fixture(scope="module")
def nightly(docker_engine: None, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A backup written by the from-release's own backup job, and the library it belongs to."""
    return seed_backup(tmp_path_factory.mktemp("nightly"), progress=lambda message: None)


@pytest.fixture
def untouched(nightly: tuple[Path, Path]) -> Iterator[None]:
    backup, library = nightly
    before = (tree_state(backup.parent), tree_state(library))
    yield
    assert tree_state(library) == before[1], "the rehearsal changed the user's library folder"
    assert tree_state(backup.parent) == before[0], "the rehearsal changed the backup's folder"


def test_a_good_upgrade_of_a_restored_sample_passes(nightly: tuple[Path, Path], untouched: None,
                                                    client: docker.DockerClient, tmp_path: Path) -> None:
    backup, library = nightly
    result = rehearse(tmp_path, *LOCAL, "--restore", str(backup), "--library", str(library),
                      "--library-sample", "2", timeout=900)
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-3000:]
    assert set(phases(tmp_path).values()) == {"passed"}, phases(tmp_path)
    copied = re.search(r"library copy: a sample of 2 asset\(s\) per user, (\d+) file\(s\)", result.stdout)
    assert copied and int(copied.group(1)) == 4, result.stdout[-6000:]  # two users, two originals each
    checked = re.findall(r"(before|after) the upgrade: (\d+) user\(s\), (\d+) album\(s\), (\d+) asset\(s\) served",
                         result.stdout)
    assert [c[0] for c in checked] == ["before", "after"] and all(c[1:] == ("2", "2", "4") for c in checked), checked
    assert "rehearsal PASSED" in result.stdout
    assert_nothing_left(client, result)


@pytest.mark.parametrize(("fault", "named"), [
    ("drop-album-members-on-upgrade",
     r"album '[^']+' of \S+ \([0-9a-f-]{36}\) lost its member\(s\) \S+@\S+ \((editor|viewer)\)"),
    ("drop-one-asset-on-upgrade", r"asset [0-9a-f-]{36} \([^)]+\): GET /api/assets/[0-9a-f-]{36} answered 400"),
], ids=["album-members", "asset"])
def test_a_migration_that_loses_data_fails_naming_it(nightly: tuple[Path, Path], untouched: None,
                                                     client: docker.DockerClient, tmp_path: Path, fault: str,
                                                     named: str) -> None:
    backup, library = nightly
    result = rehearse(tmp_path, *LOCAL, "--restore", str(backup), "--library", str(library),
                      "--to", f"v3.1.0-{fault}", timeout=900)
    assert result.returncode == 1, result.stdout[-8000:]
    verdicts = phases(tmp_path)
    assert verdicts[UPGRADE] == "passed" and verdicts[AFTER] == "failed", verdicts
    assert re.search(named, result.stdout), result.stdout[-6000:]
    assert "library copy: whole" in result.stdout
    assert "rehearsal FAILED" in result.stdout
    assert_nothing_left(client, result)


def _verify(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "immich_conformance.cli", "verify-backup", *args, *LOCAL],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)


def test_the_backup_verifies_in_containers(nightly: tuple[Path, Path], untouched: None,
                                           client: docker.DockerClient) -> None:
    backup, library = nightly
    result = _verify(str(backup), "--library", str(library))
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert re.search(r"restored into: a throwaway containers release \(Immich API double v3\.0\.3, PostgreSQL \d+\)",
                     result.stdout), result.stdout[-3000:]
    assert "users:      2" in result.stdout and "albums:     2" in result.stdout, result.stdout[-3000:]
    assert "integrity:  0 missing, 0 checksum mismatches, 0 untracked files" in result.stdout
    assert "verdict:    this backup restores" in result.stdout
    assert_nothing_left(client, result)


def test_a_damaged_library_fails_verification_in_containers_naming_the_files(
        nightly: tuple[Path, Path], client: docker.DockerClient, tmp_path: Path) -> None:
    backup, library = nightly
    damaged = tmp_path / "damaged"
    shutil.copytree(library, damaged, copy_function=shutil.copy2)
    originals = sorted(p.relative_to(damaged) for folder in ("library", "upload") if (damaged / folder).is_dir()
                       for p in (damaged / folder).rglob("*") if p.is_file() and not p.name.startswith("."))
    assert len(originals) >= 4, originals
    missing, altered = originals[:2], originals[2:]  # two gone (one may be the trashed asset, never checked)
    for path in missing:
        (damaged / path).unlink()
    for path in altered:
        (damaged / path).write_bytes(b"bit rot")
    before = tree_state(damaged)
    result = _verify(str(backup), "--library", str(damaged))
    assert result.returncode == 1, result.stdout[-6000:] + result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "library is damaged" in lines[0], result.stderr[-3000:]
    named_missing = re.findall(r"missing file: ([^;)]+)", lines[0])
    named_altered = re.findall(r"checksum mismatch: ([^;)]+)", lines[0])
    assert named_missing and named_altered, lines[0]
    assert {Path(p) for n in named_missing for p in n.split(", ")} <= set(missing), lines[0]
    assert {Path(p) for n in named_altered for p in n.split(", ")} <= set(altered), lines[0]
    assert tree_state(damaged) == before, "verify-backup changed the library folder it was given"
    assert_nothing_left(client, result)


OLD = "v2.4.1"  # a release from before Immich's restore flow (v2.5) and integrity checks (v3)


@pytest.fixture(scope="module")
def old_nightly(docker_engine: None, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A backup written by the backup job of a release that has no restore flow, and the library it belongs to."""
    return seed_backup(tmp_path_factory.mktemp("old-nightly"), progress=lambda message: None, immich_tag=OLD)


@pytest.mark.parametrize(("to", "passes"), [("v3.0.3", True), ("v3.1.0-drop-album-members-on-upgrade", False)],
                         ids=["good", "album-members-lost"])
def test_a_release_without_the_restore_flow_gets_the_backup_by_psql(old_nightly: tuple[Path, Path],
                                                                    client: docker.DockerClient, tmp_path: Path,
                                                                    to: str, passes: bool) -> None:
    """From a release before v2.5 the backup is restored as Immich's documentation says (the server stopped, psql,
    the server started); the library is checked without integrity checks before the upgrade (that release has
    none) and with them after; a to-release that drops an album's members still fails, naming the album."""
    backup, library = old_nightly
    before = tree_state(library)
    result = rehearse(tmp_path, *LOCAL, "--from", OLD, "--to", to, "--restore", str(backup), "--library",
                      str(library), "--library-sample", "2", timeout=900)
    assert "has no restore flow (Immich before v2.5)" in result.stdout, result.stdout[-8000:]
    assert re.search(r"restored with psql in \d+\.\ds\n", result.stdout), result.stdout[-8000:]
    assert "before the upgrade: 2 user(s), 2 album(s), 4 asset(s) served byte for byte; integrity: not in this " \
           "release" in result.stdout, result.stdout[-8000:]
    verdicts = phases(tmp_path)
    if passes:
        assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-3000:]
        assert set(verdicts.values()) == {"passed"}, verdicts
        assert re.search(r"after the upgrade: 2 user\(s\), 2 album\(s\), 4 asset\(s\) served byte for byte; "
                         r"integrity: \d+ missing, 0 checksum mismatches", result.stdout), result.stdout[-8000:]
    else:
        assert result.returncode == 1 and verdicts[AFTER] == "failed", (verdicts, result.stdout[-8000:])
        assert re.search(r"album '[^']+' of \S+ \([0-9a-f-]{36}\) lost its member\(s\)", result.stdout), \
            result.stdout[-6000:]
    assert tree_state(library) == before, "the rehearsal changed the user's library folder"
    assert_nothing_left(client, result)
