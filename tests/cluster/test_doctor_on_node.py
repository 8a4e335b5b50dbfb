"""``immich-conformance doctor --overlay ci`` on the offline cluster's node (this machine), its JSON and JUnit reports
kept in reports/doctor/. That node has no NAS share: the share's type and boot-ordering checks cannot pass there
(fail or warn). The checks the offline cluster itself guarantees must pass: its kubelet's release, the kernel
features of its NetworkPolicy enforcer (kube-router), the node's own address (the public hostname is resolved from a
hosts file naming it: nothing leaves the machine), the LAN NodePort free or the stack's own, and the host folders of
a test deployment as the cluster target prepares them.

Uses a running offline cluster as it is (read only: never replaced nor stopped); otherwise brings one up for the
module and down after."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from immich_conformance import REPO_ROOT
from immich_conformance.cli import main
from immich_conformance.doctor.checks import CHECKS
from immich_conformance.doctor.settings import from_overlay
from immich_conformance.offline_cluster import OfflineCluster, layout
from immich_conformance.targets.node_claims import POSTGRES_UID, TEST_DATA_MARKER

from ..shared_cluster import SharedCluster

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="the offline cluster needs root (containerd, kubelet, iptables)"),
]

REPORTS = REPO_ROOT / "reports" / "doctor"
K3S = Path("/usr/local/bin/k3s")
MARK_TEXT = "made by the Immich conformance suite for a test deployment; emptied on each one\n"
# What the offline cluster's node guarantees, whatever the machine.
MUST_PASS = ("nas-library-folder", "nas-read-write", "postgres-folder", "model-cache-folder", "kubernetes-version",
             "kernel-networkpolicy", "lan-node-port", "split-horizon-dns")
# No NAS share on that node (no network filesystem, none declared) and no k3s or kubelet unit (the offline cluster
# runs its kubelet itself). Whether /mnt/nas is on a mount of its own, in /etc/fstab or not, depends on the machine
# (a CI runner's /mnt is often a disk of its own): those checks only need a verdict.
CANNOT_PASS = ("nas-filesystem-type", "boot-kubernetes-after-mount")
# The machine's own (CPU, memory, the disk's filesystem): anything but a fail.
NOT_FAIL = ("cpu-x86-64-v2", "memory", "postgres-local-filesystem")


@pytest.fixture(scope="module")
def cluster(offline_cluster: SharedCluster) -> OfflineCluster:
    return offline_cluster.cluster


@pytest.fixture(scope="module")
def host_folders() -> Iterator[dict[str, Path]]:
    """The ci overlay's host folders, made as the cluster target makes them where they are missing (and removed
    afterwards when still empty); folders already there are left as they are."""
    settings = from_overlay("ci")
    folders = {"nas": Path(settings.nas_path), "postgres": Path(settings.postgres_path),
               "models": Path(settings.models_path)}
    made = []
    for key, folder in folders.items():
        if folder.exists():
            continue
        folder.mkdir(parents=True)
        folder.with_name(folder.name + TEST_DATA_MARKER).write_text(MARK_TEXT)
        if key == "postgres":
            os.chown(folder, POSTGRES_UID, POSTGRES_UID)
            folder.chmod(0o700)
        made.append(folder)
    yield folders
    for folder in made:
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
            folder.with_name(folder.name + TEST_DATA_MARKER).unlink(missing_ok=True)


def test_doctor_on_the_offline_clusters_node(cluster: OfflineCluster, host_folders: dict[str, Path], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    settings = from_overlay("ci")
    hosts = tmp_path / "lan-dns-hosts"
    hosts.write_text(f"{layout.NODE_IP} {settings.public_hostname}\n")  # the record a split-horizon DNS would hold
    monkeypatch.setenv("PATH", f"{cluster.bin}:{os.environ.get('PATH', '/usr/bin:/bin')}")  # its kubelet, kubectl
    REPORTS.mkdir(parents=True, exist_ok=True)
    status = main(["doctor", "--overlay", "ci", "--json", "--kubeconfig", str(cluster.state.kubeconfig),
                   "--hosts-file", str(hosts), "--junitxml", str(REPORTS / "offline-node.xml")])
    out, err = capsys.readouterr()
    assert out, err
    (REPORTS / "offline-node.json").write_text(out)
    report = json.loads(out)
    verdicts = {r["check"]: r["verdict"] for r in report["results"]}
    shown = "\n".join(f"{r['verdict']:4} {r['check']}: {r['found']}" for r in report["results"])

    assert [r["check"] for r in report["results"]] == [c.id for c in CHECKS], shown
    assert all(v in ("pass", "warn", "fail") for v in verdicts.values()), shown
    assert all(r["found"] for r in report["results"]), shown
    assert all(r["fix"] for r in report["results"] if r["verdict"] != "pass"), shown
    # A k3s installed on the machine besides the offline cluster is what the doctor reads (the stack's own runtime).
    must_pass = [c for c in MUST_PASS if not (c == "kubernetes-version" and K3S.exists())]
    assert [c for c in must_pass if verdicts[c] != "pass"] == [], shown
    assert [c for c in CANNOT_PASS if verdicts[c] == "pass"] == [], shown
    assert [c for c in NOT_FAIL if verdicts[c] == "fail"] == [], shown
    marker = host_folders["postgres"].with_name(host_folders["postgres"].name + TEST_DATA_MARKER)
    if marker.exists():  # made by the suite (here or by the cluster target): 999, 0700
        assert verdicts["postgres-owner-and-mode"] == "pass", shown
    assert verdicts["nas-filesystem-type"] in ("warn", "fail"), shown
    assert status == (1 if "fail" in verdicts.values() else 0), shown
    assert shutil.which("kubelet") == str(cluster.bin / "kubelet")
