"""Nothing left behind, even after a crash: a run against a live target killed mid-upload leaves its uploads in the
ledger, and the next run against the same target deletes them first and says how many it found."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from immich_conformance import REPO_ROOT
from immich_conformance.ledger import Entry, Ledger
from immich_conformance.procs import wait_until
from immich_conformance.targets.live import MEDIA_LOCATION_CHECK
from immich_conformance.targets.sandbox import Sandbox

from .test_live_target import run_live, secrets, settings_file


def scenario_uploads(ledger: Ledger) -> list[Entry]:
    """The ledger's uploads that the server answered with an id, other than the media_location check's."""
    return [entry for entry in ledger.leftovers() if entry.asset_id and entry.path != MEDIA_LOCATION_CHECK]


@pytest.mark.slow
def test_a_killed_runs_uploads_are_deleted_by_the_next_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    with Sandbox() as deployment:
        settings = settings_file(tmp_path, deployment)
        env = {**os.environ, **secrets(deployment), "XDG_CACHE_HOME": str(cache)}
        ledger = Ledger(Ledger.default_path(deployment.lan.url), deployment.lan.url)
        output = (tmp_path / "killed-run.log").open("w")
        killed = subprocess.Popen(
            [sys.executable, "-m", "pytest", "features/", "--target", "live", "--live-config", str(settings),
             "-p", "no:cacheprovider", "-q"],
            cwd=REPO_ROOT, stdout=output, stderr=subprocess.STDOUT, env=env)
        try:
            # A scenario's upload, kept until the run ends. The media_location check's photo is deleted as soon as
            # it is stored: a kill timed on it can come after its deletion, and leave nothing to find.
            wait_until(lambda: deployment.nas_upload_files() and scenario_uploads(ledger), timeout=180,
                       interval=0.02, what="the first run's first scenario upload on the NAS")
        finally:
            killed.send_signal(signal.SIGKILL)
            killed.wait(timeout=30)
            output.close()
        assert killed.returncode == -signal.SIGKILL
        left = ledger.leftovers()
        assert scenario_uploads(ledger) and deployment.nas_upload_files(), \
            "the killed run left nothing: the test proves nothing"

        result = run_live(settings, {**secrets(deployment), "XDG_CACHE_HOME": str(cache)},
                          "-k", "answers_on_the_NodePort")
        out = result.stdout
        assert result.returncode == 0, out[-4000:] + result.stderr[-2000:]
        found = f"{len(left)} uploads left by an earlier run against {deployment.lan.url} found in the ledger"
        assert found in out, out[-4000:]
        assert "still on the server, deleted" in out
        wait_until(lambda: deployment.nas_upload_files() == set(), timeout=30,
                   what="the NAS upload folder emptied of the killed run's files")
        assert ledger.leftovers() == []

        again = run_live(settings, {**secrets(deployment), "XDG_CACHE_HOME": str(cache)},
                         "-k", "answers_on_the_NodePort")
        assert f"no uploads left by an earlier run against {deployment.lan.url}" in again.stdout, again.stdout[-3000:]
