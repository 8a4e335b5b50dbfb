"""What a test deployment claims on the node, checked free before any change: the node ports its Services fix and
the host folders it mounts (the NAS library, the internal drive's folders). A folder is the suite's only when the
marker file beside it says so; a port or folder another namespace uses stops the run with the way out."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..images.recipes import POSTGRES_UID
from ..kube import Kube
from .ownership import OwnershipError, namespace_way_out
from .stack_source import host_folders

TEST_DATA_MARKER = ".immich-conformance-test-data"

__all__ = ["POSTGRES_UID", "TEST_DATA_MARKER", "check_host_folders", "check_node_ports", "prepare_host_folders"]


def check_node_ports(kube: Kube, namespace: str, docs: list[dict[str, Any]]) -> None:
    """A node port the manifests fix must not be held by a Service outside ``namespace``."""
    wanted = {p["nodePort"]: d["metadata"]["name"] for d in docs if d.get("kind") == "Service"
              for p in d["spec"].get("ports", []) if "nodePort" in p}
    if not wanted:
        return
    for svc in kube.items("services", all_namespaces=True):
        if svc["metadata"]["namespace"] == namespace:
            continue
        for port in svc["spec"].get("ports", []):
            if port.get("nodePort") in wanted:
                raise OwnershipError(
                    f"node port {port['nodePort']} (Service {wanted[port['nodePort']]}) is already taken by "
                    f"Service {svc['metadata']['namespace']}/{svc['metadata']['name']}. Nothing was changed. "
                    f"{namespace_way_out(svc['metadata']['namespace'])}")


def check_host_folders(kube: Kube, namespace: str, docs: list[dict[str, Any]],
                       host_path: Callable[[str], Path]) -> dict[str, Path]:
    """The deployment's host folders on this machine (``host_path`` of each node path), refused when they hold
    anything the suite did not make or when a pod outside ``namespace`` mounts them."""
    node_paths = host_folders(docs)
    folders = {key: host_path(path) for key, path in node_paths.items()}
    for folder in folders.values():
        marker = folder.with_name(folder.name + TEST_DATA_MARKER)
        if folder.exists() and not marker.exists():
            raise OwnershipError(
                f"{folder} exists and was not made by the suite (no {marker.name} beside it): it may be your "
                f"Immich's data, and a test deployment would overwrite it. Nothing was changed. "
                f"{namespace_way_out(namespace)}")
    for pod in kube.items("pods", all_namespaces=True):
        if pod["metadata"]["namespace"] == namespace:
            continue
        for volume in pod["spec"].get("volumes", []):
            used = (volume.get("hostPath") or {}).get("path", "")
            clash = [p for p in node_paths.values() if used and (p == used or p.startswith(used.rstrip("/") + "/")
                                                        or used.startswith(p.rstrip("/") + "/"))]
            if clash:
                raise OwnershipError(
                    f"host folder {clash[0]} is in use by pod {pod['metadata']['namespace']}/"
                    f"{pod['metadata']['name']} ({used}). Nothing was changed. "
                    f"{namespace_way_out(pod['metadata']['namespace'])}")
    return folders


def prepare_host_folders(folders: dict[str, Path]) -> None:
    """A fresh NAS library and internal drive on the node, each marked as the suite's (only checked folders)."""
    for folder in folders.values():
        marker = folder.with_name(folder.name + TEST_DATA_MARKER)
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        marker.write_text("made by the Immich conformance suite for a test deployment; emptied on each one\n")
    os.chown(folders["postgres"], POSTGRES_UID, POSTGRES_UID)
    folders["postgres"].chmod(0o700)
