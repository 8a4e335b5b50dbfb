"""A few scenarios on the containers runtime with the project's images, as a user runs them: exit 0, nothing left."""

from __future__ import annotations

import re

import pytest

from immich_conformance.containers import engine

from .conftest import leftovers_of, run_suite, work_folders

pytestmark = pytest.mark.slow


def test_lan_and_upload_scenarios_pass_on_containers(docker_engine: None) -> None:
    result = run_suite("--runtime", "containers", "--images", "local", "-k", "lan or uploads", "-rs", "-s",
                        timeout=600)
    summary = result.output.strip().splitlines()[-1]
    assert result.returncode == 0, result.output[-4000:]
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed.group(1)) >= 5 and "failed" not in summary and "error" not in summary, summary
    assert "containers ready in" in result.output
    client = engine.connect()
    try:
        assert not leftovers_of(client, result.pid)
    finally:
        client.close()
    folders = work_folders(result.output)
    assert folders and not any(f.exists() for f in folders)
