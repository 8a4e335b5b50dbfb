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
from ..inner_pytest import passed_tests, without_callers_settings
from ..procs import wait_until
from ..targets.base import Target
from ..targets.credentials import secrets_environment
from ..upload_bodies import MultipartUpload, PhotoSpec
from .deployments import Deployment
from .health import startup_errors, wait_for_queues_drained
from .library import SeededLibrary, delete_library, seed_library
from .library_checks import verify_library
from .release_report import ReleaseReport, environment_changes
from .releases import Release
from .restored import RestoredLibrary, RestoreRequest, observe, restore

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
    image: PhotoSpec


@dataclass
class Rehearsal:
    release_from: Release
    release_to: Release
    deployment: Deployment[Target]
    reports: Path
    progress: Callable[[str], None] = print
    locust_seconds: int = 0
    seeded: list[Seeded] = field(default_factory=list)
    library: SeededLibrary | None = None
    failed_phase: str | None = None
    report: ReleaseReport | None = None
    restore_request: RestoreRequest | None = None
    restored: RestoredLibrary | None = None

    @property
    def target(self) -> Target | None:
        return self.deployment.target

    # --- phases ----------------------------------------------------------------------------------------------------
    def deploy_from(self) -> None:
        self.report = self._release_report()
        for line in self.report.lines():
            self.progress(line)
        self.deployment.deploy(self.release_from, self.progress)
        self._expect_version(self.release_from.immich_tag)
        self._record_images("from")

    def scenarios(self, label: str) -> None:
        options, env = self.deployment.scenario_options()
        junit = self.reports / f"scenarios-{label}.xml"
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "features/", *options, "-p", "no:cacheprovider", "-q", "-rfEs",
             f"--junitxml={junit}"],
            cwd=REPO_ROOT, env=without_callers_settings({**os.environ, **env}), capture_output=True, text=True,
            timeout=1800,
        )
        lines = result.stdout.strip().splitlines() or ["(no output)"]
        self.progress(f"scenarios {label}: {lines[-1]}")
        if result.returncode != 0:
            failed = "\n".join(line for line in lines if line.startswith(("FAILED ", "ERROR ")))
            raise AssertionError(f"the scenarios failed {label} the upgrade ({lines[-1]}); report: {junit}\n"
                                 f"{failed}\n{result.stdout[-6000:]}")
        assert passed_tests(junit), f"no scenario passed {label} the upgrade ({lines[-1]}); report: {junit}"

    def seed(self) -> None:
        target = self.deployment.running()
        client = target.lan.client(target.api_key)
        try:
            for size in [PHOTO_BYTES] * PHOTOS + [LARGE_FILE_BYTES]:
                image = PhotoSpec.unique(size)
                response = client.upload(MultipartUpload.for_photo(image))
                assert response.status_code == 201, f"seeding an asset answered {response.status_code}: {response.text}"
                asset_id = response.json()["id"]
                info = client.asset(asset_id).json()
                self.seeded.append(Seeded(asset_id, image.sha1(), size, target.nas_path(info["originalPath"]), image))
        finally:
            client.close()
        self.progress(f"seeded {len(self.seeded)} assets ({sum(s.size for s in self.seeded) / 2**20:.1f} MiB)")
        self.library = seed_library(target)
        self.progress(f"seeded a library: {self.library.summary()} ({self.library.write(self.reports)})")

    def restore_backup(self) -> None:
        """``--restore``: the user's backup restored into the from-release, a copy of their library beside it."""
        assert self.restore_request is not None
        self.restored = restore(self.deployment, self.restore_request, self.progress)

    def check_restored(self, label: str) -> None:
        """``--restore``: users, albums, the copy's assets and Immich's integrity checks, ``label`` the upgrade."""
        assert self.restored is not None, "the backup was not restored"
        state = observe(self.deployment, self.restored, label, self.progress)
        if self.restored.before is None:
            self.restored.before = state

    def upgrade(self) -> None:
        self.deployment.upgrade(self.release_to)
        self._expect_version(self.release_to.immich_tag)
        self._record_images("to")
        self._expect_clean_start()
        self._wait_for_jobs()

    def verify(self) -> None:
        assert self.seeded, "no asset was seeded before the upgrade: there is nothing to verify"
        self._wait_for_jobs()
        target = self.deployment.running()
        client = target.lan.client(target.api_key)
        problems: list[str] = []
        try:
            for asset in self.seeded:
                problems += check_asset(client, asset)
            if self.library is not None:
                problems += verify_library(target, self.library)
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
               **secrets_environment(target.api_key, (token[0], token[1])),
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
        if self.library is not None and self.target is not None:
            failures = delete_library(self.target, self.library)
            self.progress("the seeded library was deleted" if not failures else
                          "the seeded library was not wholly deleted: " + "; ".join(failures))
            self.library = None if not failures else self.library
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
    def _expect_clean_start(self) -> None:
        """Fail when the upgraded server's start-up log has error lines, however Ready it is."""
        errors = startup_errors(self.deployment.server_log_since_upgrade())
        if errors:
            raise AssertionError(
                f"the upgraded Immich server ({self.release_to.immich_tag}) is Ready and reports its version, but "
                f"its start-up log has {len(errors)} error line(s): fix their cause before this upgrade\n  "
                + "\n  ".join(errors[:20]))

    def _wait_for_jobs(self) -> None:
        """Wait until Immich's job queues have nothing active or waiting (background deletes, metadata...)."""
        target = self.deployment.running()
        client = target.lan.client(target.api_key)
        try:
            wait_for_queues_drained(client)
        finally:
            client.close()

    def _release_report(self) -> ReleaseReport:
        whole = self.release_from.whole or self.release_to.whole
        if whole and self.deployment.deploys_whole_refs():
            scope = "each git ref's own stack/ (every image, environment, config and manifest)"
        elif whole:
            scope = f"only the Immich tag of each git ref (on {self.deployment} a ref's stack/ is not deployed)"
        else:
            scope = "only the Immich tag (both Immich images), on the current stack/"
        return ReleaseReport(str(self.release_from), str(self.release_to), scope,
                             environment_changes=environment_changes(self.release_from.stack.render(),
                                                                     self.release_to.stack.render()))

    def _record_images(self, phase: str) -> None:
        assert self.report is not None
        self.report.images[phase] = self.deployment.running_images()
        self.report.running_environment[phase] = self.deployment.running_environment()
        self.report.write(self.reports)
        if phase == "to":
            for line in self.report.lines():
                self.progress(line)

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
