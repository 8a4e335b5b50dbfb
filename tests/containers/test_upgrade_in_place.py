"""Another Immich release on a running containers run, as the rehearsal uses it: the server and machine-learning
containers are replaced, on the same NAS, database and 127.0.0.1 ports, and nothing else is touched. A second pytest
process tests the run as it stands (``--runtime containers --deployed``) and leaves it running."""

from __future__ import annotations

import json
import os
import re

import docker
import httpx
import pytest

from immich_conformance.containers import cleanup
from immich_conformance.targets.bootstrap import API_KEY_ENV
from immich_conformance.targets.containers import ContainersSandbox
from immich_conformance.targets.containers_attached import RUN_FILE_ENV
from immich_conformance.upload_bodies import MultipartUpload, PhotoSpec

from .conftest import run_suite

pytestmark = pytest.mark.slow


def _ids(client: docker.DockerClient, run_id: str) -> dict[str, str]:
    containers = client.containers.list(filters={"label": f"{cleanup.RUN_LABEL}={run_id}"})
    return {c.labels[cleanup.DEPLOYMENT_LABEL]: c.id for c in containers}


def _version(url: str) -> str:
    v = httpx.get(f"{url}/api/server/version", timeout=10).json()
    return f"v{v['major']}.{v['minor']}.{v['patch']}"


def test_the_immich_containers_move_to_another_release_on_the_same_data(client: docker.DockerClient) -> None:
    target = ContainersSandbox(images="local", immich_tag="v3.0.3", progress=lambda m: print(f"[containers] {m}"))
    try:
        target.start()
        lan, origin, run_id = target.lan.url, target.origin.url, target.run_id
        assert _version(lan) == "v3.0.3"
        api = target.lan.client(target.api_key)
        image = PhotoSpec.unique(64 * 1024)
        asset = api.upload(MultipartUpload.for_photo(image)).json()["id"]
        before = _ids(client, run_id)

        target.upgrade_immich("v3.1.0")

        after = _ids(client, run_id)
        moved = {name for name in before if before[name] != after.get(name)}
        assert moved == {"immich-server", "immich-machine-learning"}, (before, after)
        assert target.lan.url == lan and target.origin.url == origin, "the published ports moved"
        assert _version(lan) == "v3.1.0"
        assert api.asset(asset).status_code == 200, "the asset did not survive the upgrade"
        log = target.logs_since({})["immich-server"]
        assert "Version has changed: v3.0.3 -> v3.1.0" in log
        doc = json.loads(target.run_file.read_text())
        assert doc["immich_tag"] == "v3.1.0" and doc["lan"] == lan
        api.close()

        result = run_suite("--runtime", "containers", "--deployed", "-k", "lan", "-rs", "-s",
                           env={RUN_FILE_ENV: str(target.run_file), API_KEY_ENV: target.api_key}, timeout=300)
        assert result.returncode == 0, result.output[-4000:]
        assert re.search(r"\d+ passed", result.output.splitlines()[-1]), result.output[-2000:]
        assert f"testing the containers run {run_id} (Immich v3.1.0" in result.output
        assert _ids(client, run_id) == after, "the second pytest changed the run it tested"
    finally:
        target.close()
    assert not cleanup.leftovers(client, run_id)


def test_testing_a_run_that_is_not_there_says_how_to_start_one(tmp_path) -> None:  # noqa: ANN001
    missing = run_suite("--runtime", "containers", "--deployed",
                        env={RUN_FILE_ENV: "", API_KEY_ENV: ""}, timeout=120)
    assert missing.returncode == 4, missing.output[-2000:]
    assert f"set {RUN_FILE_ENV} to its run file" in missing.output
    ended = tmp_path / "run.json"
    ended.write_text(json.dumps({"run_id": "0123456789ab", "prefix": "ic-01234567", "overlay": "ci",
                                 "images": "local", "immich_tag": None, "workdir": str(tmp_path),
                                 "lan": "http://127.0.0.1:9", "external": "http://127.0.0.1:9",
                                 "origin": "http://127.0.0.1:9", "media_location": "/data", "containers": [],
                                 "owner": f"{os.getpid()}:0"}))
    gone = run_suite("--runtime", "containers", "--deployed", env={RUN_FILE_ENV: str(ended), API_KEY_ENV: "k"},
                     timeout=120)
    assert gone.returncode == 4, gone.output[-2000:]
    assert "the containers run 0123456789ab" in gone.output and "has ended: its process is gone" in gone.output
    processes = run_suite("--deployed", timeout=120)
    assert processes.returncode == 4 and "the processes sandbox is always started fresh" in processes.output
