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

from ..backups.psql_restore import PsqlRestore, psql_errors
from ..backups.sql_access import PSQL_FILE_SCRIPT, PSQL_SCRIPT
from ..conditions import pods_ready
from ..containers.engine import ContainersError
from ..kube import CrashLoop, KubeError
from ..procs import WaitTimeout, wait_until
from ..targets.base import Target
from ..targets.bootstrap import API_KEY_ENV
from ..targets.cluster import NODE_ADDRESS_ENV, NODE_LOCAL_ENV, ClusterSetupError, ClusterTarget
from ..targets.containers import DATABASE, ContainersSandbox, ContainerStopped
from ..targets.containers_attached import RUN_FILE_ENV
from ..targets.spec import TargetSetupError, TargetSpec, TargetSpecError, construct_target, open_target
from ..targets.stack_source import Placement
from .releases import RehearsalError, Release

UPGRADE_TIMEOUT = 300.0
PSQL_RESTORE_TIMEOUT = 900.0
Progress = Callable[[str], None]
T = TypeVar("T", bound=Target)


class Deployment(ABC, Generic[T]):
    """One place to rehearse in; ``target`` is the running stack once ``deploy`` returned."""

    target: T | None = None
    upgrade_began: float = 0.0  # time.time() when the last upgrade changed the deployment

    @abstractmethod
    def deploy(self, release: Release, progress: Progress) -> T:
        """Deploy ``release``; return when it is ready for the scenarios."""

    @abstractmethod
    def upgrade(self, release: Release) -> None:
        """Move the running deployment to ``release`` on the same data; return when the new one is ready."""

    @abstractmethod
    def running_images(self) -> dict[str, str]:
        """The image each running component's container runs ("deployment/container" -> image)."""

    @abstractmethod
    def server_log_since_upgrade(self) -> str:
        """The log of the Immich server(s) the last ``upgrade`` started, from their start on."""

    def running_environment(self) -> dict[str, dict[str, str]]:
        """The literal environment variables of each running container, where the place shows them."""
        return {}

    def deploys_whole_refs(self) -> bool:
        """Whether a git ref's own stack/ is deployed whole here (else only its Immich tag is used)."""
        return False

    def preflight(self, release: Release, progress: Progress) -> None:
        """Check, before any change, that ``release`` can be deployed here; RehearsalError says what is wrong."""

    @abstractmethod
    def scenario_options(self) -> tuple[list[str], dict[str, str]]:
        """pytest options and environment variables that test this deployment as it stands."""

    @property
    @abstractmethod
    def builds_doubles(self) -> bool:
        """Whether each release is a build of the project's Immich double (made from its tag, so the rehearsal has
        default releases), rather than Immich's real images."""

    def psql(self, query: str) -> str:
        """Run ``query`` with psql in the running stack's database container; its rows as CSV (no header)."""
        raise RehearsalError(f"{self} gives no way into its database")

    def restore_with_psql(self, restore: PsqlRestore) -> str:
        """Immich's documented restore for releases without the restore flow: the server stopped, the SQL fed to
        psql in the database container, the server started again and answering; psql's errors (empty: none)."""
        raise RehearsalError(f"{self} cannot restore a backup with psql")

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
    placement: Placement = Placement()
    target: ClusterTarget | None = None

    def __str__(self) -> str:
        where = "the offline cluster" if self.offline else f"the cluster of {self.kubeconfig}"
        return f"{where} (overlay {self.overlay}, namespace {self.placement.namespace})"

    def deploys_whole_refs(self) -> bool:
        return True

    @property
    def builds_doubles(self) -> bool:
        return self.offline

    def preflight(self, release: Release, progress: Progress) -> None:
        spec = TargetSpec(target="cluster", kubeconfig=self.kubeconfig, offline_cluster=self.offline,
                          keep=self.keep_cluster, source=release.stack, namespace=self.placement.namespace,
                          scratch=self.placement.scratch)
        try:
            target = construct_target(spec, progress)
        except (TargetSpecError, TargetSetupError) as exc:
            raise RehearsalError(str(exc)) from None
        assert isinstance(target, ClusterTarget)
        self.target = target
        try:
            self.target.preflight()
        except ClusterSetupError as exc:
            self.target.close()
            self.target = None
            raise RehearsalError(str(exc)) from None

    def deploy(self, release: Release, progress: Progress) -> ClusterTarget:
        if self.target is None:
            self.preflight(release, progress)
        assert self.target is not None
        self.target.progress = progress  # the phases' own progress lines from here on
        return self.target.start()

    def upgrade(self, release: Release) -> None:
        target = self.running()
        immich_tag = release.immich_tag
        target.import_immich_release(immich_tag)
        applied_at = self.upgrade_began = target.apply_release(release.stack)
        deadline = time.monotonic() + UPGRADE_TIMEOUT

        fresh_server_ready = pods_ready(target.kube, {"app.kubernetes.io/name": "immich-server"}, since=applied_at)

        def rolled_out() -> bool:
            try:
                target.kube.fail_on_crash_loop({"app.kubernetes.io/name": "immich-server"})
            except CrashLoop as exc:
                raise CrashLoop(f"immich-server is crash-looping after the upgrade: {exc}") from None
            return bool(fresh_server_ready())

        wait_until(rolled_out, timeout=max(deadline - time.monotonic(), 1), interval=2.0,
                   what=f"the upgraded immich-server ({immich_tag}) Ready")
        if target.rolled:  # every other Deployment the release changed: its fresh pods, not the old ones
            target.wait_available(target.rolled, since=applied_at, timeout=max(deadline - time.monotonic(), 1))
        target.wait_available(since=0.0, timeout=max(deadline - time.monotonic(), 1))

    def server_log_since_upgrade(self) -> str:
        """Each container's log of every immich-server pod made by the upgrade (a restarted one's previous run too)."""
        target = self.running()
        logs = []
        for pod in target.kube.ready_pods({"app.kubernetes.io/name": "immich-server"}, since=self.upgrade_began):
            for status in pod.get("status", {}).get("containerStatuses", []):
                name = pod["metadata"]["name"]
                if status.get("restartCount", 0):
                    logs.append(target.kube.pod_log(name, status["name"], previous=True))
                logs.append(target.kube.pod_log(name, status["name"]))
        return "\n".join(logs)

    def scenario_options(self) -> tuple[list[str], dict[str, str]]:
        target = self.running()
        env = {API_KEY_ENV: target.api_key, NODE_ADDRESS_ENV: target.node_ip,
               NODE_LOCAL_ENV: "1" if target.offline else os.environ.get(NODE_LOCAL_ENV, "0")}
        scratch = ["--scratch", str(self.placement.scratch)] if self.placement.scratch else []
        return ["--target", "cluster", "--deployed", "--kubeconfig", str(target.kubeconfig),
                "--namespace", target.namespace, *scratch], env

    def running_images(self) -> dict[str, str]:
        return {name: container["image"] for name, container in self._running_containers().items()}

    def psql(self, query: str) -> str:
        result = self.running().kube.run("exec", f"deployment/{DATABASE}", "-c", "postgres", "--", "sh", "-c",
                                         PSQL_SCRIPT, "sh", query, check=False, timeout=300)
        if result.returncode != 0:
            raise RehearsalError(f"psql in deployment/{DATABASE} failed: {result.stderr.strip()[:500]}")
        return result.stdout

    def restore_with_psql(self, restore: PsqlRestore) -> str:
        target = self.running()
        try:
            with target.immich_server_stopped():
                result = target.kube.run("exec", "-i", f"deployment/{DATABASE}", "-c", "postgres", "--", "sh", "-c",
                                         PSQL_FILE_SCRIPT, "sh", restore.database or "", "-", stdin=restore.sql,
                                         check=False, timeout=PSQL_RESTORE_TIMEOUT)
                if result.returncode != 0:
                    raise RehearsalError(f"psql in deployment/{DATABASE} failed: {result.stderr.strip()[-500:]}")
        except (KubeError, WaitTimeout) as exc:
            raise RehearsalError(f"restoring with psql on {self}: {exc}") from None
        return psql_errors(result.stderr)

    def running_environment(self) -> dict[str, dict[str, str]]:
        return {name: {v["name"]: v["value"] for v in container.get("env", []) if "value" in v}
                for name, container in self._running_containers().items()}

    def _running_containers(self) -> dict[str, dict]:
        """The containers of the running pods, as their pod specs have them ("component/container" -> spec)."""
        found = {}
        for pod in self.running().kube.items("pods"):
            if pod["metadata"].get("deletionTimestamp") or pod.get("status", {}).get("phase") != "Running":
                continue
            owner = pod["metadata"].get("labels", {}).get("app.kubernetes.io/name", pod["metadata"]["name"])
            for container in pod["spec"]["containers"]:
                found[f"{owner}/{container['name']}"] = container
        return found


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

    def deploy(self, release: Release, progress: Progress) -> ContainersSandbox:
        spec = TargetSpec(runtime="containers", images=self.images, keep=self.keep, immich_tag=release.immich_tag)
        try:
            target = open_target(spec, progress)
        except (TargetSpecError, TargetSetupError) as exc:
            raise RehearsalError(str(exc)) from None
        assert isinstance(target, ContainersSandbox)
        self.target = target
        return target

    def upgrade(self, release: Release) -> None:
        self.upgrade_began = time.time()
        self.running().upgrade_immich(release.immich_tag)

    def server_log_since_upgrade(self) -> str:
        """The whole log of the immich-server container the upgrade started."""
        return self.running().logs_since({}).get("immich-server", "")

    def running_images(self) -> dict[str, str]:
        return self.running().running_images()

    def psql(self, query: str) -> str:
        try:
            return self.running().psql(query)
        except ContainersError as exc:
            raise RehearsalError(str(exc)) from None

    def restore_with_psql(self, restore: PsqlRestore) -> str:
        target = self.running()
        try:
            with target.immich_server_stopped():
                errors = target.load_sql(restore.sql, restore.database)
        except (ContainersError, ContainerStopped) as exc:
            raise RehearsalError(f"restoring with psql on {self}: {exc}") from None
        return psql_errors(errors)

    def scenario_options(self) -> tuple[list[str], dict[str, str]]:
        target = self.running()
        return ["--runtime", "containers", "--deployed"], {API_KEY_ENV: target.api_key,
                                                         RUN_FILE_ENV: str(target.run_file)}
