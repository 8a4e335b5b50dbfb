"""The pre-upgrade gate with ``--runtime containers``, tested on itself between builds of the API double: a good
upgrade passes (and the scenarios ran on both releases); a release that loses an asset fails and names it; a release
whose migration fails stops, and the upgrade phase fails with its log; a release that logs a failed migration
and serves on fails the upgrade phase quoting that line, though its container is Ready. Nothing is left behind."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import docker
import pytest

from ..rehearsal.gate_runs import (
    assert_failed_upgrade_shows_log,
    assert_logged_error_fails_upgrade,
    assert_lost_asset_named,
    assert_passed,
    rehearse,
)
from .leftovers import assert_nothing_left

pytestmark = pytest.mark.slow
LOCAL = ("--runtime", "containers", "--images", "local")


def _scenario_counts(result: subprocess.CompletedProcess[str]) -> list[int]:
    return [int(n) for n in re.findall(r"scenarios (?:before|after): (\d+) passed", result.stdout)]


def test_a_good_upgrade_passes_every_phase(client: docker.DockerClient, tmp_path: Path) -> None:
    result = rehearse(tmp_path, *LOCAL, "--locust-seconds", "5", timeout=900)
    assert_nothing_left(client, result)
    assert_passed(result, tmp_path)
    counts = _scenario_counts(result)
    assert len(counts) == 2 and min(counts) >= 20, result.stdout[-4000:]
    assert "Immich v3.1.0 Ready" in result.stdout
    assert (tmp_path / "load_stats.csv").is_file()


def test_a_release_that_loses_an_asset_fails_and_names_it(client: docker.DockerClient, tmp_path: Path) -> None:
    result = rehearse(tmp_path, *LOCAL, "--to", "v3.1.0-drop-one-asset-on-upgrade", timeout=900)
    assert_nothing_left(client, result)
    assert_lost_asset_named(result, tmp_path)


def test_a_release_whose_migration_fails_fails_the_upgrade_with_its_log(client: docker.DockerClient,
                                                                       tmp_path: Path) -> None:
    result = rehearse(tmp_path, *LOCAL, "--to", "v3.1.0-fail-migration-on-upgrade", timeout=900)
    assert_nothing_left(client, result)
    assert_failed_upgrade_shows_log(result, tmp_path)
    assert "the immich-server container stopped (exit code 1)" in result.stdout


def test_a_release_that_logs_a_migration_error_fails_the_upgrade_though_ready(client: docker.DockerClient,
                                                                              tmp_path: Path) -> None:
    result = rehearse(tmp_path, *LOCAL, "--to", "v3.1.0-log-migration-error-on-upgrade", timeout=900)
    assert_nothing_left(client, result)
    assert "Immich v3.1.0-log-migration-error-on-upgrade Ready" in result.stdout, result.stdout[-6000:]
    assert_logged_error_fails_upgrade(result, tmp_path)
