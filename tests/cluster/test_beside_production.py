"""The suite on a node where a person's Immich already runs: it changes nothing of it.

A "production" Immich is deployed from stack/ as a person would (no ownership label) into the stack's own namespace
with a few photos. Then, beside it, the scenarios run and an upgrade is rehearsed between two git refs (which differ
in the Postgres image, an environment variable and one ConfigMap) with ``--namespace`` and ``--scratch``. Afterwards
every production object keeps its resourceVersion, its NodePort still serves its photos byte for byte, its NAS and
model-cache folders are untouched (every file's size, mtime and bytes), and its Postgres folder keeps its owner
and mode (Postgres itself writes there while it runs). Last, the suite is run into the production namespace
itself, and refuses before any change.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pytest

from immich_conformance import REPO_ROOT
from immich_conformance.conditions import url_answers_ok
from immich_conformance.images.build import build_images, default_cache_dir
from immich_conformance.kube import Kube
from immich_conformance.procs import wait_until
from immich_conformance.targets.base import Endpoint
from immich_conformance.targets.bootstrap import bootstrap_user
from immich_conformance.targets.kinds import CLUSTER_SCOPED, NAMESPACED_KINDS
from immich_conformance.targets.stack_source import Placement, StackSource, dump, ensure_test_secrets, host_folders
from immich_conformance.upload_bodies import MultipartUpload, PhotoSpec

from ..rehearsal.git_refs import commit_of_head_with, edit_yaml
from ..shared_cluster import SharedCluster

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="the offline cluster needs root (containerd, kubelet, iptables)"),
]

PRODUCTION = "immich"
BESIDE = "immich-beside"
WORK = Path("/var/tmp/immich-conformance-beside-production")
POSTGRES_IMAGE = "localhost/immich-conformance/postgres"
IMMICH_IMAGES = ("ghcr.io/immich-app/immich-server", "ghcr.io/immich-app/immich-machine-learning")
SERVER_DEPLOYMENT = "stack/base/immich-server/deployment.yaml"
REF_MARK = "IMMICH_CONFORMANCE_REF_MARK"


@dataclass
class Production:
    kube: Kube
    lan: Endpoint
    api_key: str
    folders: dict[str, Path]
    photos: dict[str, PhotoSpec]
    kubeconfig: Path
    node_ip: str


def run(*argv: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *argv], cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout,
                          env={k: v for k, v in os.environ.items() if not k.startswith("IMMICH_CONFORMANCE_")})


def failures(completed: subprocess.CompletedProcess[str]) -> str:
    """The start of a pytest run's failures (where the reason is) and its summary, not just the tail of its output."""
    out = completed.stdout
    start = out.find("= FAILURES =")
    head = out[max(start, 0):][:6000] if start >= 0 else out[-6000:]
    summary = out[out.find("short test summary info"):] if "short test summary info" in out else ""
    return head + "\n...\n" + summary[-3000:] + completed.stderr[-2000:]


@pytest.fixture(scope="module")
def production(offline_cluster: SharedCluster) -> Iterator[Production]:
    if WORK.exists():
        shutil.rmtree(WORK)
    cluster, info = offline_cluster.cluster, offline_cluster.info
    assert info is not None, "the offline_cluster fixture brings the cluster up"
    docs: list[dict] = []
    try:
        # The offline cluster is the test's own: start from nothing (both at once: each waits ~5 s at least).
        Kube(info.kubeconfig, PRODUCTION).delete_namespaces(PRODUCTION, BESIDE)
        images = build_images(None, default_cache_dir(), print)
        cluster.import_images([image.archive for image in images.values()])
        cluster.tag_image(f"{POSTGRES_IMAGE}:15", f"{POSTGRES_IMAGE}:15-rehearsal")
        ensure_test_secrets(print)
        # A person's deployment: stack/ as it renders, no label of the suite's, folders of its own.
        docs = Placement(PRODUCTION, PurePosixPath(WORK / "production")).apply_to(StackSource("ci").render())
        folders = {key: Path(path) for key, path in host_folders(docs).items()}
        for folder in folders.values():
            folder.mkdir(parents=True)
        os.chown(folders["postgres"], 999, 999)
        folders["postgres"].chmod(0o700)
        kube = Kube(info.kubeconfig, PRODUCTION)
        kube.run("apply", "-f", "-", namespaced=False, stdin=dump(docs), timeout=180)
        kube.wait_rollout(timeout=300)
        lan = Endpoint(f"http://{info.node_ip}:30283")
        wait_until(url_answers_ok(f"{lan.url}/api/server/ping", timeout=3.0), timeout=90, interval=0.5,
                   what="production's NodePort answering")
        api_key = bootstrap_user(lan)
        client = lan.client(api_key)
        photos = {}
        for _ in range(3):
            image = PhotoSpec.unique(64 * 1024)
            response = client.upload(MultipartUpload.for_photo(image))
            assert response.status_code == 201, response.text
            photos[response.json()["id"]] = image
        client.close()
        yield Production(kube, lan, api_key, folders, photos, info.kubeconfig, info.node_ip)
    finally:  # a later test finds the cluster as it is: leave nothing of this test's production in it
        cluster_kube = Kube(info.kubeconfig, PRODUCTION)
        cluster_kube.delete_namespaces(PRODUCTION, BESIDE, check=False)
        # Production's Pod Security policy and binding are cluster-scoped and carry no mark of the suite: left
        # behind, they would stop any later run in the stack's own namespace.
        policies = [f"{CLUSTER_SCOPED[d['kind']]}/{d['metadata']['name']}" for d in docs
                    if d.get("kind") in CLUSTER_SCOPED]
        if policies:
            cluster_kube.run("delete", *policies, "--ignore-not-found", namespaced=False, check=False)
        shutil.rmtree(WORK, ignore_errors=True)


def objects(kube: Kube) -> dict[str, str]:
    """Every object of the namespace (and the namespace itself), with its resourceVersion."""
    listed = [item for kind in (*NAMESPACED_KINDS, "pods", "replicasets.apps") for item in kube.items(kind)]
    found = {f"{i['kind']}/{i['metadata']['name']}": i["metadata"]["resourceVersion"] for i in listed}
    found["Namespace"] = kube.get("namespaces", kube.namespace, namespaced=False)["metadata"]["resourceVersion"]
    return found


def tree(folder: Path) -> dict[str, tuple[int, int, str]]:
    """Every file under ``folder``: size, mtime (ns) and SHA-1."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns,
                                         hashlib.sha1(p.read_bytes()).hexdigest())
            for p in sorted(folder.rglob("*")) if p.is_file()}


def state(production: Production) -> dict:
    pg = production.folders["postgres"].stat()
    # Production's own nightly database backup (Immich's job, 02:00 by default) may land, and an old one go, while
    # the test runs: the server's doing, not the suite's.
    nas = {path: facts for path, facts in tree(production.folders["nas"]).items()
           if not PurePosixPath(path).match("backups/immich-db-backup-*")}
    return {"objects": objects(production.kube), "nas": nas,
            "models": tree(production.folders["models"]), "postgres": (pg.st_uid, pg.st_mode)}


def assert_serves_its_photos(production: Production) -> None:
    client = production.lan.client(production.api_key)
    try:
        for asset_id, image in production.photos.items():
            response = client.asset(asset_id)
            assert response.status_code == 200, response.text
            info = response.json()
            assert base64.b64decode(info["checksum"]) == image.sha1()
            on_nas = production.folders["nas"] / PurePosixPath(info["originalPath"]).relative_to("/data")
            assert on_nas.read_bytes() == image.content()
    finally:
        client.close()


def two_refs() -> tuple[str, str]:
    """Two commits of HEAD: "from" with its own ConfigMap and REF_MARK=from; "to" with Immich v3.1.0, another
    Postgres image, REF_MARK=to, and no such ConfigMap."""
    def mark_env(value: str):  # noqa: ANN202
        def change(doc: dict) -> None:
            doc["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": REF_MARK, "value": value})
        return change

    def from_only_config(doc: dict) -> None:
        doc.setdefault("configMapGenerator", []).append({"name": "rehearsal-from-only", "literals": ["ref=from"]})

    def to_images(doc: dict) -> None:
        for image in doc["images"]:
            if image["name"] == "ghcr.io/immich-app/postgres":
                image["newTag"] = "15-rehearsal"
            if image["name"] in IMMICH_IMAGES:  # the ci overlay names the Immich release again
                image["newTag"] = "v3.1.0"

    def to_immich(doc: dict) -> None:  # both Immich images: each is an entry of its own
        for image in doc["images"]:
            if image["name"] in IMMICH_IMAGES:
                image["newTag"] = "v3.1.0"

    ref_from = commit_of_head_with({
        SERVER_DEPLOYMENT: edit_yaml(SERVER_DEPLOYMENT, mark_env("from")),
        "stack/overlays/ci/kustomization.yaml": edit_yaml("stack/overlays/ci/kustomization.yaml", from_only_config),
    }, "rehearsal test: from")
    ref_to = commit_of_head_with({
        SERVER_DEPLOYMENT: edit_yaml(SERVER_DEPLOYMENT, mark_env("to")),
        "stack/overlays/ci/kustomization.yaml": edit_yaml("stack/overlays/ci/kustomization.yaml", to_images),
        "stack/base/kustomization.yaml": edit_yaml("stack/base/kustomization.yaml", to_immich),
    }, "rehearsal test: to")
    return ref_from, ref_to


def test_the_suite_beside_production_changes_nothing_of_it(production: Production, tmp_path: Path) -> None:
    before = state(production)
    assert before["nas"], "production has photos on its NAS"
    beside = ("--cluster", "offline", "--keep-cluster", "--namespace", BESIDE, "--scratch", str(WORK / "beside"))

    scenarios = run("-m", "pytest", "features/", "--target", "cluster", *beside, "-p", "no:cacheprovider", "-q",
                    "--tb=short", "-rs")
    assert scenarios.returncode == 0, failures(scenarios)
    assert " passed" in scenarios.stdout.splitlines()[-1]

    ref_from, ref_to = two_refs()
    reports = tmp_path / "rehearsal"
    rehearsal = run("-m", "immich_conformance.cli", "rehearse", *beside, "--from", ref_from, "--to", ref_to,
                    "--reports", str(reports))
    assert rehearsal.returncode == 0, rehearsal.stdout[:8000] + rehearsal.stderr[-2000:]
    report = json.loads((reports / "releases.json").read_text())
    assert report["scope"].startswith("each git ref's own stack/")
    assert report["images"]["from"]["immich-postgres/postgres"] == f"{POSTGRES_IMAGE}:15"
    assert report["images"]["to"]["immich-postgres/postgres"] == f"{POSTGRES_IMAGE}:15-rehearsal"
    assert report["images"]["to"]["immich-server/immich-server"].endswith(":v3.1.0")
    assert report["running_environment"]["from"]["immich-server/immich-server"][REF_MARK] == "from"
    assert report["running_environment"]["to"]["immich-server/immich-server"][REF_MARK] == "to"
    assert f"immich-server/immich-server: {REF_MARK} 'from' -> 'to'" in report["environment_changes"]
    assert "deleted configmaps/rehearsal-from-only-" in rehearsal.stdout, rehearsal.stdout[-6000:]
    left = Kube(production.kubeconfig, BESIDE).items("configmaps")
    assert not [c for c in left if c["metadata"]["name"].startswith("rehearsal-from-only-")], \
        "the upgrade deletes what the to-ref no longer has"

    assert state(production) == before
    assert_serves_its_photos(production)

    # Into the production namespace itself: refused, before any change.
    into = run("-m", "pytest", "features/", "--target", "cluster", "--cluster", "offline", "--keep-cluster",
               "-p", "no:cacheprovider", "-q")
    assert into.returncode == pytest.ExitCode.USAGE_ERROR, into.stdout[-4000:]
    assert f"namespace {PRODUCTION} exists and was not made by the suite" in into.stdout + into.stderr
    refused = run("-m", "immich_conformance.cli", "rehearse", "--cluster", "offline", "--keep-cluster",
                  "--reports", str(tmp_path / "refused"))
    assert refused.returncode == 2, refused.stdout[-4000:] + refused.stderr
    assert f"namespace {PRODUCTION} exists and was not made by the suite" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert state(production) == before
    assert_serves_its_photos(production)
