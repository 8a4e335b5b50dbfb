"""What a containers run the tests started left on the engine: only that run's, whatever else the engine runs."""

from __future__ import annotations

import re
import subprocess

import docker

from immich_conformance.containers import cleanup


def assert_nothing_left(client: docker.DockerClient, result: subprocess.CompletedProcess[str]) -> None:
    """The containers runs ``result`` reported left no container, network or volume behind (other runs on the same
    engine are not looked at)."""
    runs = re.findall(r"run ([0-9a-f]{12}): work folder", result.stdout)
    assert runs, result.stdout[-3000:]
    for run in runs:
        assert not cleanup.leftovers(client, run), f"the run left {cleanup.leftovers(client, run)} behind"
