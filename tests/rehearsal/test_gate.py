"""The pre-upgrade gate tested on itself, on the offline cluster: a good upgrade passes; a release whose start-up
migration silently drops an asset fails the rehearsal, which names that asset; a release whose migration fails
crash-loops, and the upgrade phase fails with its log; a release that logs a failed migration and serves on fails
the upgrade phase quoting that line, though its pod is Ready.

The four rehearsals run in two lanes at once (the node has room for two stacks, as the beside-production test
shows): one in the stack's own namespace, as a person runs the gate, and one beside it (``--namespace``,
``--scratch``). Each lane runs its rehearsals one after another; each test waits for its own and judges it."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from immich_conformance.kube import Kube

from ..shared_cluster import SharedCluster
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
]
OFFLINE = ("--cluster", "offline")
BESIDE = "immich-gate"
SCRATCH = Path("/var/tmp/immich-conformance-gate")
# lane -> its rehearsals, in order: (name, --to release or None for the default)
LANES: dict[tuple[str, ...], list[tuple[str, str | None]]] = {
    (): [("good", None), ("fails-migration", "v3.1.0-fail-migration-on-upgrade")],
    ("--namespace", BESIDE, "--scratch", str(SCRATCH)): [("loses-asset", "v3.1.0-drop-one-asset-on-upgrade"),
                                                         ("logs-error", "v3.1.0-log-migration-error-on-upgrade")],
}

Runs = dict[str, tuple[Path, "Future[subprocess.CompletedProcess[str]]"]]


def run_lane(placement: tuple[str, ...], rehearsals: list[tuple[str, str | None]],
             reports: dict[str, Path]) -> dict[str, subprocess.CompletedProcess[str]]:
    """One lane's rehearsals, one after another, by name."""
    return {name: rehearse(reports[name], *OFFLINE, *placement, *(("--to", to) if to else ()))
            for name, to in rehearsals}


@pytest.fixture(scope="module")
def gate_runs(offline_cluster: SharedCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    info = offline_cluster.info
    assert info is not None, "the offline_cluster fixture brings the cluster up"
    shutil.rmtree(SCRATCH, ignore_errors=True)
    runs: Runs = {}
    with ThreadPoolExecutor(max_workers=len(LANES)) as lanes:  # leaving it waits for both lanes
        for placement, rehearsals in LANES.items():
            reports = {name: tmp_path_factory.mktemp(f"gate-{name}") for name, _ in rehearsals}
            done = lanes.submit(run_lane, placement, rehearsals, reports)
            runs.update({name: (reports[name], done) for name, _ in rehearsals})
        yield runs
    Kube(info.kubeconfig, BESIDE).delete_namespaces(BESIDE, check=False)
    shutil.rmtree(SCRATCH, ignore_errors=True)


def result_of(runs: Runs, name: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    reports, done = runs[name]
    return done.result()[name], reports


def test_a_good_upgrade_passes_every_phase(gate_runs: Runs) -> None:
    result, reports = result_of(gate_runs, "good")
    assert_passed(result, reports)


def test_a_release_that_loses_an_asset_fails_and_names_it(gate_runs: Runs) -> None:
    result, reports = result_of(gate_runs, "loses-asset")
    assert_lost_asset_named(result, reports)


def test_a_release_whose_migration_fails_fails_the_upgrade_with_its_log(gate_runs: Runs) -> None:
    result, reports = result_of(gate_runs, "fails-migration")
    assert_failed_upgrade_shows_log(result, reports)
    assert "crash-looping after the upgrade" in result.stdout


def test_a_release_that_logs_a_migration_error_fails_the_upgrade_though_ready(gate_runs: Runs) -> None:
    result, reports = result_of(gate_runs, "logs-error")
    assert_logged_error_fails_upgrade(result, reports)
