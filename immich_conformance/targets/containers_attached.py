"""A containers run that another process started and owns, tested as it stands: ``pytest features/ --runtime
containers --deployed``, as the upgrade rehearsal runs the scenarios before and after it swaps the Immich release.

The owning run writes a run file (``run.json`` in its work folder; ``ContainersSandbox.run_file``):
IMMICH_CONFORMANCE_CONTAINERS_RUN names it, and IMMICH_CONFORMANCE_API_KEY carries the API key (secrets stay out of
the file). Nothing is started, changed or removed here: the owner does all of that.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from ..containers import engine
from ..containers.engine import ContainersError
from ..procs import process_alive
from .base import Endpoint, Target
from .containers import ContainersSandbox
from .credentials import API_KEY_ENV, secret

RUN_FILE_ENV = "IMMICH_CONFORMANCE_CONTAINERS_RUN"
_HOW = (f"start the run first (immich-conformance rehearse --runtime containers runs one) and set {RUN_FILE_ENV} "
        f"to its run file and {API_KEY_ENV} to its API key")


class AttachedContainers(ContainersSandbox):
    """The containers of a running containers run, by its run file."""

    persists_between_runs = True

    def __init__(self, run_file: Path, api_key: str | None, progress: Callable[[str], None] | None = None) -> None:
        super().__init__(progress=progress)
        self._source = run_file
        self._given_key = api_key

    @classmethod
    def from_environment(cls, progress: Callable[[str], None] | None = None) -> AttachedContainers:
        run_file = os.environ.get(RUN_FILE_ENV)
        if not run_file:
            raise ContainersError(f"--deployed with --runtime containers tests a run that is already up: {_HOW}")
        return cls(Path(run_file), secret(API_KEY_ENV) or None, progress)

    def start(self) -> AttachedContainers:
        # The base's start, not the owner's: no signal handlers, nothing to remove at exit.
        return Target.start(self)

    def _start(self) -> None:
        from docker.errors import NotFound

        from ..images.edge_material import EdgeMaterialError, load_edge_material

        try:
            doc = json.loads(self._source.read_text())
            owner, names = str(doc["owner"]), list(doc["containers"])
            self.run_id, self.prefix, self.overlay, self.images = doc["run_id"], doc["prefix"], doc["overlay"], \
                doc["images"]
            self.immich_tag, self.workdir = doc.get("immich_tag"), Path(doc["workdir"])
            lan, external, origin = doc["lan"], doc["external"], doc["origin"]
            self.media_location = PurePosixPath(doc["media_location"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ContainersError(f"{RUN_FILE_ENV}={self._source}: not the run file of a containers run ({exc}); "
                                  f"{_HOW}") from None
        if not process_alive(owner):
            raise ContainersError(f"the containers run {self.run_id} ({self._source}) has ended: its process is gone")
        if not self._given_key:
            raise ContainersError(f"{API_KEY_ENV} is not set: the run's API key is needed to test it")
        try:
            self.material = load_edge_material(self.workdir / "stack" / "components" / "edge-standin")
        except EdgeMaterialError as exc:
            raise ContainersError(f"the run {self.run_id}: {exc}") from None
        self.aud, self.team_domain = self.material.aud, self.material.team_domain
        self.public_hostname = self.material.public_hostname
        self.client = engine.connect()
        try:
            self.containers.running = {name: self.client.containers.get(f"{self.prefix}-{name}") for name in names}
        except NotFound as exc:
            raise ContainersError(f"the run {self.run_id} lacks a container it listed: {exc}") from None
        host = {"Host": self.public_hostname}
        self._lan, self._external, self._origin = Endpoint(lan), Endpoint(external, host), Endpoint(origin, host)
        self._api_key = self._given_key
        self._progress(f"testing the containers run {self.run_id} (Immich {self.immich_tag or 'as pinned'}; "
                       f"LAN {lan})")

    def close(self) -> None:
        """Let go of Docker; the run itself is its owner's."""
        if self.client is not None:
            self.client.close()
            self.client = None
