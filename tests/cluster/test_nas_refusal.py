"""The NAS scenario's checks can fail, on the offline cluster: "immich-server does not become Ready" is False as soon
as a server with its NAS is Ready; without the NAS the kubelet's refusal to mount it settles it at once; and a stack
whose library volume is made when missing (hostPath DirectoryOrCreate) has the node write where the NAS belongs,
which the scenario's second check names.

The ci overlay is deployed into a namespace of the test's own; each test leaves the NAS and the server as they were.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import PurePosixPath

import pytest

from immich_conformance.procs import WaitTimeout, wait_until
from immich_conformance.targets.cluster import ClusterTarget

from ..shared_cluster import SharedCluster
from .fixtures import deployed_stack

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="the offline cluster needs root (containerd, kubelet, iptables)"),
]

NAMESPACE = "immich-nas-refusal"
SCRATCH = PurePosixPath("/var/tmp/immich-conformance-nas-refusal")
SERVER = "immich-server"


@pytest.fixture(scope="module")
def target(offline_cluster: SharedCluster) -> Iterator[ClusterTarget]:
    yield from deployed_stack(NAMESPACE, SCRATCH)


@pytest.fixture()
def nas_away(target: ClusterTarget) -> Iterator[None]:
    """The NAS unmounted for the test; afterwards back, whatever the node made in its place removed, the server
    Ready on it."""
    target.unmount_nas()
    yield
    if target.nas_root.exists() and target.nas_root.with_name(target.nas_root.name + ".unmounted").exists():
        shutil.rmtree(target.nas_root)
    target.mount_nas()
    target.restart(SERVER)


def test_a_server_with_its_nas_is_not_said_to_stay_down(target: ClusterTarget) -> None:
    since = target.restart_without_waiting(SERVER)
    assert not target.stays_unready(SERVER, since=since, seconds=60)


def test_without_the_nas_the_refused_mount_settles_it_at_once(target: ClusterTarget, nas_away: None) -> None:
    since = target.restart_without_waiting(SERVER)
    began = time.monotonic()
    assert target.stays_unready(SERVER, since=since, seconds=60)
    assert time.monotonic() - began < 30, "the refused mount was not seen: the check waited for its whole window"
    assert target.kube.mount_refusals(target.deployments()[SERVER]["spec"]["selector"]["matchLabels"], since=since)
    assert not target.nas_root.exists()


def test_a_library_volume_made_when_missing_fails_the_scenario(target: ClusterTarget, nas_away: None) -> None:
    patch = [{"op": "replace", "path": f"/spec/template/spec/volumes/{_library_index(target)}/hostPath/type",
              "value": "DirectoryOrCreate"}]
    target.kube.run("patch", "deployment", SERVER, "--type=json", "-p", json.dumps(patch))
    try:
        target.kube.run("rollout", "restart", f"deployment/{SERVER}")
        try:
            wait_until(target.nas_root.exists, timeout=60, interval=0.5, what="a folder where the NAS belongs")
        except WaitTimeout:
            pytest.fail("the node made no folder where the NAS belongs: the mutation did nothing")
    finally:
        patch[0]["value"] = "Directory"
        target.kube.run("patch", "deployment", SERVER, "--type=json", "-p", json.dumps(patch))


def _library_index(target: ClusterTarget) -> int:
    volumes = target.deployments()[SERVER]["spec"]["template"]["spec"]["volumes"]
    return next(i for i, volume in enumerate(volumes) if volume["name"] == "library")
