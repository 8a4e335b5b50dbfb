"""One rehearsal: where it deploys, its releases, the assets it seeded, and each phase's work."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from .. import REPO_ROOT
from ..immich_client import ImmichClient
from ..procs import wait_until
from ..targets.base import Target
from ..uploads import ImageSpec, MultipartUpload
from .deployments import Deployment
from .releases import Release

PHOTOS = 6
PHOTO_BYTES = 256 * 1024
LARGE_FILE_BYTES = 30 * 1024 * 1024
VERSION_TIMEOUT = 120.0


@dataclass
class Seeded:
    asset_id: str
    sha1: bytes
    size: int
    nas_path: Path
    image: ImageSpec


@dataclass
class Rehearsal:
    release_from: Release
    release_to: Release
    deployment: Deployment[Target]
    reports: Path
    progress: Callable[[str], None] = print
    locust_seconds: int = 0
    seeded: list[Seeded] = field(default_factory=list)
    failed_phase: str | None = None

    @property
    def target(self) -> Target | None:
        return self.deployment.target

    # --- phases ----------------------------------------------------------------------------------------------------
    def deploy_from(self) -> None:
        self.deployment.deploy(self.release_from.immich_tag, self.progress)
        self._expect_version(self.release_from.immich_tag)

    def scenarios(self, label: str) -> None:
        options, env = self.deployment.scenario_options()
        junit = self.reports / f"scenarios-{label}.xml"
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "features/", *options, "-p", "no:cacheprovider", "-q", "-rs",
             f"--junitxml={junit}"],
            cwd=REPO_ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=1800,
        )
        summary = (result.stdout.strip().splitlines() or ["(no output)"])[-1]
        self.progress(f"scenarios {label}: {summary}")
        if result.returncode != 0:
            raise AssertionError(f"the scenarios failed {label} the upgrade ({summary}); report: {junit}\n"
                                 f"{result.stdout[-6000:]}")

    def seed(self) -> None:
        target = self.deployment.running()
        client = target.lan.client(target.api_key)
        try:
            for size in [PHOTO_BYTES] * PHOTOS + [LARGE_FILE_BYTES]:
                image = ImageSpec.unique(size)
                response = client.upload(MultipartUpload.for_image(image))
                assert response.status_code == 201, f"seeding an asset answered {response.status_code}: {response.text}"
                asset_id = response.json()["id"]
                info = client.asset(asset_id).json()
                self.seeded.append(Seeded(asset_id, image.sha1(), size, target.nas_path(info["originalPath"]), image))
        finally:
            client.close()
        self.progress(f"seeded {len(self.seeded)} assets ({sum(s.size for s in self.seeded) / 2**20:.1f} MiB)")

    def upgrade(self) -> None:
        self.deployment.upgrade(self.release_to.immich_tag)
        self._expect_version(self.release_to.immich_tag)

    def verify(self) -> None:
        target = self.deployment.running()
        client = target.lan.client(target.api_key)
        problems: list[str] = []
        try:
            for asset in self.seeded:
                problems += check_asset(client, asset)
            self._expect_version(self.release_to.immich_tag)
        finally:
            client.close()
        assert not problems, f"{len(problems)} problem(s) after the upgrade:\n" + "\n".join(problems)

    def load_test(self) -> None:
        """Upload throughput on the upgraded stack: locust's own gate, its CSV and HTML beside the reports."""
        if self.locust_seconds <= 0:
            pytest.skip("no load test asked for (--locust-seconds)")
        target = self.deployment.running()
        token = list(target.service_token_headers.values())
        env = {**os.environ, "IMMICH_CONFORMANCE_EXTERNAL_URL": target.external.url,
               "IMMICH_CONFORMANCE_PUBLIC_HOSTNAME": target.public_hostname,
               "IMMICH_CONFORMANCE_API_KEY": target.api_key, "IMMICH_CONFORMANCE_SERVICE_TOKEN_ID": token[0],
               "IMMICH_CONFORMANCE_SERVICE_TOKEN_SECRET": token[1],
               "IMMICH_CONFORMANCE_NAS_PATH": str(target.nas_root)}
        result = subprocess.run(
            [sys.executable, "-m", "locust", "-f", "loadtests/upload.py", "--headless", "-u", "5", "-r", "5",
             "-t", f"{self.locust_seconds}s", "--host", target.lan.url, "--csv", str(self.reports / "load"),
             "--html", str(self.reports / "load.html")],
            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=self.locust_seconds + 600,
        )
        self.progress("load test: " + " | ".join(result.stdout.strip().splitlines()[-3:]))
        assert result.returncode == 0, f"the upload gate failed after the upgrade:\n{result.stdout[-4000:]}"

    def delete_seeded(self) -> None:
        if not self.seeded or self.target is None:
            return
        client = self.target.lan.client(self.target.api_key)
        try:
            response = client.delete_assets([s.asset_id for s in self.seeded], force=True)
            if response.status_code == 204:
                self.seeded.clear()
        finally:
            client.close()

    def close(self) -> None:
        try:
            self.delete_seeded()
        except httpx.HTTPError as exc:  # a failed upgrade may have left no server to ask
            self.progress(f"the {len(self.seeded)} seeded assets were not deleted (the server did not answer: "
                          f"{exc}); they are test assets of this rehearsal")
        finally:
            if self.target is not None:
                self.target.close()

    # --- helpers ---------------------------------------------------------------------------------------------------
    def _expect_version(self, tag: str) -> None:
        """Wait until the server reports release ``tag`` on the LAN and through the public hostname (where the
        origin proxy must have found the new server)."""
        target = self.deployment.running()
        want = tag.split("-", 1)[0].lstrip("v")
        paths = {"the LAN": target.lan, "the public hostname": target.external}

        def reports_it() -> bool:
            for endpoint in paths.values():
                client = endpoint.client(**target.service_token_headers)
                try:
                    response = client.version()
                finally:
                    client.close()
                v = response.json() if response.status_code == 200 else {}
                if f"{v.get('major')}.{v.get('minor')}.{v.get('patch')}" != want:
                    return False
            return True

        wait_until(reports_it, timeout=VERSION_TIMEOUT, interval=1.0,
                   what=f"the server reporting version {want} on {' and '.join(paths)}")


def check_asset(client: ImmichClient, asset: Seeded) -> list[str]:
    """What is wrong with one seeded asset after the upgrade ([] when it is intact)."""
    response = client.asset(asset.asset_id)
    if response.status_code != 200:
        return [f"asset {asset.asset_id} is gone: GET /api/assets/{asset.asset_id} answered {response.status_code}"]
    problems = []
    if base64.b64decode(response.json()["checksum"]) != asset.sha1:
        problems.append(f"asset {asset.asset_id}: Immich reports another checksum")
    if not asset.nas_path.is_file():
        problems.append(f"asset {asset.asset_id}: its file {asset.nas_path} is not on the NAS")
    else:
        digest = hashlib.sha1()
        with asset.nas_path.open("rb") as f:
            while block := f.read(1 << 20):
                digest.update(block)
        if digest.digest() != asset.sha1:
            problems.append(f"asset {asset.asset_id}: {asset.nas_path} differs from the bytes uploaded")
    return problems


REHEARSAL = pytest.StashKey[Rehearsal]()
