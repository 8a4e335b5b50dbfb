"""``rehearse --restore`` with ``--runtime containers --images local``, from a backup the double wrote by its own job
on a seeded library: a good upgrade passes every phase on a sample of the library; a to-release whose migration drops
an album's members, or an asset, fails the check after the upgrade, naming the album or the asset. The user's library
folder and backup are never changed (paths, sizes and modification times compared), and nothing is left behind."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

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
