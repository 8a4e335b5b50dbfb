"""Which tests share a worker, and whether a run takes in the offline cluster's group (then `-n auto` adds a worker)."""

from __future__ import annotations

from pathlib import Path

import pytest

from immich_conformance import REPO_ROOT

from .worker_groups import ANYWHERE, CLUSTER_GROUP, group_of, selects_group


def test_a_test_belongs_to_the_group_of_its_folder() -> None:
    assert group_of("tests/cluster/test_errors.py::test_x") == CLUSTER_GROUP
    assert group_of("tests/rehearsal/test_gate.py::test_y[a/b]") == CLUSTER_GROUP
    assert group_of("tests/containers/test_images.py::test_z") == "docker"
    assert group_of("tests/double/test_double_startup.py::test_w") is None
    assert group_of("features/test_contract.py::test_v") is None


def test_a_file_that_uses_none_of_its_folders_resource_runs_anywhere() -> None:
    assert group_of("tests/rehearsal/test_library.py::test_delete_library_leaves_nothing") is None
    assert group_of("tests/rehearsal/test_options.py::test_x[nowhere]") is None
    assert group_of("tests/rehearsal/test_releases.py::test_y") == CLUSTER_GROUP  # it makes git commits
    assert all(Path(REPO_ROOT, path).is_file() for path in ANYWHERE), ANYWHERE


@pytest.mark.parametrize(("paths", "selected"), [
    (["."], True), (["tests"], True), (["tests/", "features"], True), (["./tests/images"], True),
    (["tests/rehearsal/test_gate.py::test_a_good_upgrade_passes_every_phase"], True),
    (["tests/rehearsal/test_library.py"], False), (["tests/rehearsal/test_library.py", "tests/rehearsal"], True),
    (["features"], False), (["tests/double"], False), (["tests/containers"], False), (["tests/clusterish"], False),
    ([], False),
])
def test_a_run_takes_in_the_cluster_group_only_with_one_of_its_folders(paths: list[str], selected: bool) -> None:
    assert selects_group(paths, CLUSTER_GROUP) is selected
