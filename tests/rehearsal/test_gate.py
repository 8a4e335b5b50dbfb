"""The pre-upgrade gate tested on itself, on the offline cluster: a good upgrade passes; a release whose start-up
migration silently drops an asset fails the rehearsal, which names that asset; a release whose migration fails
crash-loops, and the upgrade phase fails with its log; a release that logs a failed migration and serves on fails
the upgrade phase quoting that line, though its pod is Ready."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .gate_runs import (
    assert_failed_upgrade_shows_log,
    assert_logged_error_fails_upgrade,
    assert_lost_asset_named,
    assert_passed,
    rehearse,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="the offline cluster runs as root (run the suite as root)"),
    pytest.mark.usefixtures("offline_cluster"),
]
OFFLINE = ("--cluster", "offline")


def test_a_good_upgrade_passes_every_phase(tmp_path: Path) -> None:
    assert_passed(rehearse(tmp_path, *OFFLINE), tmp_path)


def test_a_release_that_loses_an_asset_fails_and_names_it(tmp_path: Path) -> None:
    assert_lost_asset_named(rehearse(tmp_path, *OFFLINE, "--to", "v3.1.0-drop-one-asset-on-upgrade"), tmp_path)


def test_a_release_whose_migration_fails_fails_the_upgrade_with_its_log(tmp_path: Path) -> None:
    result = rehearse(tmp_path, *OFFLINE, "--to", "v3.1.0-fail-migration-on-upgrade")
    assert_failed_upgrade_shows_log(result, tmp_path)
    assert "crash-looping after the upgrade" in result.stdout


def test_a_release_that_logs_a_migration_error_fails_the_upgrade_though_ready(tmp_path: Path) -> None:
    result = rehearse(tmp_path, *OFFLINE, "--to", "v3.1.0-log-migration-error-on-upgrade")
    assert_logged_error_fails_upgrade(result, tmp_path)
