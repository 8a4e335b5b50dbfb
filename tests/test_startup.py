"""What a run loads before its first test: the sandbox and containers runs, and the command line, start without the
Kubernetes client (its models take about half a second of CPU to import, paid by every pytest and CLI process the
suite and its users start); a cluster run loads it when it opens its target."""

from __future__ import annotations

import subprocess
import sys

import pytest

from immich_conformance import REPO_ROOT

LOADED = "import sys, {module}; print('kubernetes' in sys.modules)"


def loads_the_kubernetes_client(module: str) -> bool:
    """Whether importing ``module`` in a fresh interpreter loads the ``kubernetes`` package."""
    done = subprocess.run([sys.executable, "-c", LOADED.format(module=module)], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=60, check=True)
    return done.stdout.strip() == "True"


@pytest.mark.parametrize("module", ["immich_conformance.pytest_plugin", "immich_conformance.cli",
                                    "immich_conformance.targets.spec"])
def test_starting_a_run_does_not_load_the_kubernetes_client(module: str) -> None:
    assert not loads_the_kubernetes_client(module), f"{module} loads the Kubernetes client at start-up"


def test_the_cluster_target_loads_it() -> None:
    assert loads_the_kubernetes_client("immich_conformance.targets.cluster"), \
        "the check above would pass whatever a module loads"
