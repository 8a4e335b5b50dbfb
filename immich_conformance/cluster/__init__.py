"""A real single-node Kubernetes on this machine, built offline from the Go module proxy.

``OfflineCluster().up()`` gives a ``ClusterInfo`` (kubeconfig, node address, kubectl argv); ``down()`` leaves the
machine as it was; ``status()`` tells what runs. Every failure a person can fix is a ``ClusterError`` naming the cause
and the fix.
"""

from __future__ import annotations

from pathlib import Path

from .cluster import ClusterInfo, ClusterStatus, OfflineCluster
from .errors import ClusterError
from .kube import KubeApi


def wait_default_service_account(namespace: str, *, state_dir: Path | None = None, timeout: float = 30.0) -> None:
    """Wait until ``namespace`` has its default ServiceAccount (a pod created before that is refused)."""
    OfflineCluster(state_dir, progress=lambda _msg: None).wait_default_service_account(namespace, timeout=timeout)


__all__ = ["ClusterError", "ClusterInfo", "ClusterStatus", "KubeApi", "OfflineCluster",
           "wait_default_service_account"]
