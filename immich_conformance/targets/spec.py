"""The one way in: a target described once (``TargetSpec``) and opened by one function (``open_target``).

The pytest plugin builds the spec from its options, the rehearsal and the load test from theirs; all of them open the
target here, so every option means the same everywhere:

* ``target``: where the stack under test runs: ``sandbox`` (started by the run on this machine), ``cluster`` (a
  Kubernetes cluster: the offline one, or one from a kubeconfig) or ``live`` (a running deployment, non-destructive);
* ``runtime``: how the sandbox's components run: ``processes`` (default) or ``containers`` (Docker).

A setup failure of any target comes back as ``TargetSetupError``: one line, prefixed with the option that chose it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from .base import Target
from .stack_source import STACK_NAMESPACE, Placement, StackSource

if TYPE_CHECKING:
    from .immich_server import ServerCommand

TARGET_NAMES = ("sandbox", "cluster", "live")
RUNTIMES = ("processes", "containers")
IMAGE_MODES = ("pinned", "local")
Progress = Callable[[str], None]


class TargetSpecError(ValueError):
    """The options describe no target that can be opened; the message says which option to change."""


class TargetSetupError(RuntimeError):
    """The target could not be opened: ``reason`` says what, where and how to fix it; the message prefixes it with
    the option that chose the target."""

    def __init__(self, option: str, reason: str) -> None:
        super().__init__(f"{option}: {reason}")
        self.option = option
        self.reason = reason


@dataclass(frozen=True)
class TargetSpec:
    target: str = "sandbox"
    runtime: str = "processes"
    keep: bool = False  # keep the sandbox's work folder, or the offline cluster, after the run
    deployed: bool = False  # test a stack that is already up (a cluster, or a containers run another process owns)
    # the sandbox
    workdir: Path | None = None  # the processes sandbox's work folder (default: a new temporary one)
    images: str = "pinned"  # containers runtime: the real Immich images, or local builds of the double
    sandbox_nas: Path | None = None
    server_command: ServerCommand | None = None
    immich_tag: str | None = None  # containers runtime: the Immich release to run
    # a cluster
    kubeconfig: Path | None = None
    offline_cluster: bool = False
    namespace: str = STACK_NAMESPACE
    scratch: PurePosixPath | None = None
    source: StackSource | None = None  # the stack to deploy (default: this checkout's ci overlay)
    # a live deployment
    live_settings: Path | None = None
    lan_only: bool = False
    allow_large_external: bool = False

    @property
    def option(self) -> str:
        """The option that chose this target, to prefix its errors."""
        if self.target != "sandbox":
            return f"--target {self.target}"
        if self.runtime == "containers":
            return "--runtime containers"
        return "--immich-server-cmd" if self.server_command else "sandbox"

    def check(self) -> None:
        """Refuse options that do not fit together, before anything starts."""
        if self.target not in TARGET_NAMES:
            raise TargetSpecError(f"--target {self.target!r} is not a target: choose one of {', '.join(TARGET_NAMES)}")
        if self.runtime not in RUNTIMES:
            raise TargetSpecError(f"--runtime {self.runtime!r}: choose {' or '.join(RUNTIMES)}")
        if self.images not in IMAGE_MODES:
            raise TargetSpecError(f"--images {self.images!r}: choose {' or '.join(IMAGE_MODES)}")
        if self.target == "cluster" and not (self.offline_cluster or self.kubeconfig):
            raise TargetSpecError("--target cluster needs a cluster: --cluster offline (build and run one on this "
                                  "machine) or --kubeconfig PATH / KUBECONFIG (an existing kind or k3s cluster)")
        if self.target == "live" and self.live_settings is None:
            raise TargetSpecError("--target live needs its settings: --live-config PATH")
        processes_sandbox = self.target == "sandbox" and self.runtime == "processes"
        if self.deployed and processes_sandbox:
            raise TargetSpecError("--deployed tests a stack that is already up: with --target cluster, or with "
                                  "--runtime containers (a run another process owns); the processes sandbox is "
                                  "always started fresh")
        if self.server_command and not processes_sandbox:
            raise TargetSpecError("--immich-server-cmd runs a server in the processes sandbox: use it with the "
                                  "default --target sandbox --runtime processes")
        if self.sandbox_nas and not processes_sandbox:
            raise TargetSpecError("--sandbox-nas is the processes sandbox's NAS folder: use it with the default "
                                  "--target sandbox --runtime processes")


def open_target(spec: TargetSpec, progress: Progress | None = None) -> Target:
    """The target ``spec`` describes, started. Raises TargetSpecError or TargetSetupError (one line each)."""
    target = construct_target(spec, progress)
    try:
        return target.start()
    except TargetSetupError:
        raise
    except _setup_errors() as exc:
        raise TargetSetupError(spec.option, str(exc)) from None


def construct_target(spec: TargetSpec, progress: Progress | None = None) -> Target:
    """The target ``spec`` describes, not started yet (for a caller that checks it before it starts it)."""
    spec.check()
    progress = progress or (lambda message: None)
    try:
        if spec.target == "live":
            from .live import LiveSettings, LiveTarget

            assert spec.live_settings is not None
            return LiveTarget(LiveSettings.load(spec.live_settings), allow_large_external=spec.allow_large_external,
                              lan_only=spec.lan_only)
        if spec.target == "cluster":
            from .cluster import ClusterTarget

            return ClusterTarget(kubeconfig=spec.kubeconfig, offline=spec.offline_cluster, keep=spec.keep,
                                 deploy=not spec.deployed, source=spec.source,
                                 placement=Placement(spec.namespace, spec.scratch), progress=progress)
        if spec.runtime == "containers":
            from .containers import ContainersSandbox
            from .containers_attached import AttachedContainers

            if spec.deployed:
                return AttachedContainers.from_environment(progress)
            return ContainersSandbox(images=spec.images, keep=spec.keep, immich_tag=spec.immich_tag,
                                     progress=progress)
        from .sandbox import Sandbox

        return Sandbox(spec.workdir, keep=spec.keep, progress=progress, server=spec.server_command,
                       nas=spec.sandbox_nas)
    except _setup_errors() as exc:
        option = "--sandbox-nas" if spec.sandbox_nas and spec.option == "sandbox" else spec.option
        raise TargetSetupError(option, str(exc)) from None


def _setup_errors() -> tuple[type[BaseException], ...]:
    from ..containers.engine import ContainersError
    from .cluster import ClusterSetupError
    from .live import LiveSettingsError
    from .sandbox import SandboxError

    return (ClusterSetupError, ContainersError, LiveSettingsError, SandboxError)
