"""A real single-node Kubernetes on this machine, built offline from the Go module proxy.

``OfflineCluster().up()`` gives a ``ClusterInfo`` (kubeconfig, node address, kubectl argv); ``down()`` leaves the
machine as it was; ``status()`` tells what runs. Every failure a person can fix is a ``ClusterError`` naming the cause
and the fix.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .api_server import KubeApi
    from .errors import ClusterError
    from .lifecycle import ClusterInfo, ClusterStatus, OfflineCluster

# Exported names, imported when first used: ``python -m immich_conformance.offline_cluster.packages`` (run by
# setup.sh before anything else is installed) then loads only what it needs, and runs as the module it is.
_EXPORTS = {"ClusterInfo": ".lifecycle", "ClusterStatus": ".lifecycle", "OfflineCluster": ".lifecycle",
            "ClusterError": ".errors", "KubeApi": ".api_server"}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name], __name__), name)


def wait_default_service_account(namespace: str, *, state_dir: Path | None = None, timeout: float = 30.0) -> None:
    """Wait until ``namespace`` has its default ServiceAccount (a pod created before that is refused)."""
    from .lifecycle import OfflineCluster

    OfflineCluster(state_dir, progress=lambda _msg: None).wait_default_service_account(namespace, timeout=timeout)


__all__ = ["ClusterError", "ClusterInfo", "ClusterStatus", "KubeApi", "OfflineCluster",
           "wait_default_service_account"]
