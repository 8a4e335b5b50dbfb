"""Where a rehearsal deploys, and how each place swaps one Immich release for another.

* ``ClusterDeployment``: a Kubernetes cluster (the offline one, or kind/k3s by kubeconfig); the upgrade applies the
  stack with the to-release's images and waits for the rollout, failing on a crash-looping pod.
* ``ContainersDeployment``: the stack's containers under Docker (``--runtime containers``); the upgrade replaces the
  Immich server and machine-learning containers by the to-release's on the same folders and database.

Both hand the scenarios phase the arguments and environment of a second pytest that tests the deployment as it is.
"""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from ..procs import GiveUp, wait_until
from ..targets.base import Target
from ..targets.bootstrap import API_KEY_ENV
from ..targets.cluster import NODE_ADDRESS_ENV, NODE_LOCAL_ENV, ClusterTarget
from ..targets.containers import ContainersSandbox
from ..targets.containers_attached import RUN_FILE_ENV
from .releases import RehearsalError

UPGRADE_TIMEOUT = 300.0
CRASH_RESTARTS = 3
Progress = Callable[[str], None]
T = TypeVar("T", bound=Target)


class CrashLoop(GiveUp):
    """The upgraded server keeps stopping: the wait for its rollout ends at once (the message holds its log)."""


class Deployment(ABC, Generic[T]):
    """One place to rehearse in; ``target`` is the running stack once ``deploy`` returned."""

    target: T | None = None

    @abstractmethod
    def deploy(self, immich_tag: str, progress: Progress) -> T:
        """Deploy the stack with Immich at ``immich_tag``; return when it is ready for the scenarios."""

    @abstractmethod
    def upgrade(self, immich_tag: str) -> None:
        """Swap the running Immich for ``immich_tag`` on the same data; return when the new one is ready."""

    @abstractmethod
    def scenario_options(self) -> tuple[list[str], dict[str, str]]:
        """pytest options and environment variables that test this deployment as it stands."""

    @property
    @abstractmethod
    def builds_doubles(self) -> bool:
        """Whether each release is a build of the project's Immich double (made from its tag, so the rehearsal has
        default releases), rather than Immich's real images."""

    def running(self) -> T:
        if self.target is None:
            raise RehearsalError("the from-release was never deployed")
        return self.target


@dataclass
class ClusterDeployment(Deployment[ClusterTarget]):
    kubeconfig: Path | None
    offline: bool
    keep_cluster: bool = False
    overlay: str = "ci"
    target: ClusterTarget | None = None

    def __str__(self) -> str:
        where = "the offline cluster" if self.offline else f"the cluster of {self.kubeconfig}"
        return f"{where} (overlay {self.overlay})"

    @property
    def builds_doubles(self) -> bool:
        return self.offline

    def deploy(self, immich_tag: str, progress: Progress) -> ClusterTarget:
        self.target = ClusterTarget(kubeconfig=self.kubeconfig, offline=self.offline, keep=self.keep_cluster,
                                    immich_tag=immich_tag, overlay=self.overlay, progress=progress).start()
        return self.target

    def upgrade(self, immich_tag: str) -> None:
        target = self.running()
        target.import_immich_release(immich_tag)
        applied_at = target.apply_release(immich_tag)
        deadline = time.monotonic() + UPGRADE_TIMEOUT

        def rolled_out() -> bool:
            self._fail_on_crash_loop()
            return bool(target.kube.ready_pods({"app.kubernetes.io/name": "immich-server"}, since=applied_at))

        wait_until(rolled_out, timeout=max(deadline - time.monotonic(), 1), interval=2.0,
                   what=f"the upgraded immich-server ({immich_tag}) Ready")
        target.wait_available(since=0.0, timeout=max(deadline - time.monotonic(), 1))

    def scenario_options(self) -> tuple[list[str], dict[str, str]]:
        target = self.running()
        env = {API_KEY_ENV: target.api_key, NODE_ADDRESS_ENV: target.node_ip,
               NODE_LOCAL_ENV: "1" if target.offline else os.environ.get(NODE_LOCAL_ENV, "0")}
        return ["--target", "cluster", "--deployed", "--kubeconfig", str(target.kubeconfig)], env

    def _fail_on_crash_loop(self) -> None:
        target = self.running()
        for pod in target.kube.items("pods", "app.kubernetes.io/name=immich-server"):
            for status in pod.get("status", {}).get("containerStatuses", []):
                waiting = status.get("state", {}).get("waiting", {}).get("reason", "")
                if status.get("restartCount", 0) >= CRASH_RESTARTS or waiting == "CrashLoopBackOff":
                    name = pod["metadata"]["name"]
                    logs = target.kube.run("logs", name, "--previous", "--tail=80", check=False).stdout
                    raise CrashLoop(f"immich-server pod {name} is crash-looping after the upgrade "
                                    f"({waiting or status.get('restartCount')} restarts); its last log:\n{logs}")


@dataclass
class ContainersDeployment(Deployment[ContainersSandbox]):
    images: str = "local"
    keep: bool = False
    target: ContainersSandbox | None = None

    def __str__(self) -> str:
        return f"containers ({self.images} images)"

    @property
    def builds_doubles(self) -> bool:
        return self.images == "local"

    def deploy(self, immich_tag: str, progress: Progress) -> ContainersSandbox:
        self.target = ContainersSandbox(images=self.images, keep=self.keep, immich_tag=immich_tag,
                                        progress=progress).start()
        return self.target

    def upgrade(self, immich_tag: str) -> None:
        self.running().upgrade_immich(immich_tag)

    def scenario_options(self) -> tuple[list[str], dict[str, str]]:
        target = self.running()
        return ["--runtime", "containers", "--deployed"], {API_KEY_ENV: target.api_key,
                                                         RUN_FILE_ENV: str(target.run_file)}
