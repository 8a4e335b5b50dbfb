"""A containers run's work folder: the stack rendered from a copy of stack/ holding the run's own secrets and edge
material (the repository's files are neither read nor written), the node's folders (the NAS library, the internal
drive's) as the run's, and each pod's own volumes (emptyDirs, ConfigMap and Secret files)."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from .. import STACK_DIR, run_folders
from .container_spec import ContainerSpec, StackSpec
from .engine import ContainersError

if TYPE_CHECKING:
    from ..images.edge_material import EdgeMaterial
    from ..stack_checks.rendering import RenderedOverlay

NAS_SETTING = "nasLibraryPath"


PREFIX = "immich-containers-"


def create(progress: Callable[[str], None]) -> Path:
    """A new work folder the containers' users can reach their mounted files through; first, the work folders of runs
    killed before their end removed (``run_folders``)."""
    workdir = run_folders.fresh(PREFIX, progress=progress)
    workdir.chmod(0o755)
    return workdir


def render(workdir: Path, overlay: str) -> tuple[EdgeMaterial, RenderedOverlay]:
    """The overlay rendered from a copy of stack/ (in ``workdir``) holding this run's secrets and edge material."""
    from ..images.edge_material import EdgeMaterialError, prepare_edge_material
    from ..stack_checks.rendering import StackConfigError, missing_secret_files, overlay_dir, render_overlay

    stack = workdir / "stack"
    shutil.copytree(STACK_DIR, stack, ignore=_real_secrets)
    try:
        material = prepare_edge_material(stack / "components" / "edge-standin")
        for item in missing_secret_files(overlay_dir(stack, overlay)):
            if item.example is None:
                raise ContainersError(f"{item.advice(stack.parent)}: the containers runtime makes the run's "
                                      "secrets from the examples")
            item.path.write_text(secrets_from_example(item.example.read_text()))
            item.path.chmod(0o600)
        rendered = render_overlay(overlay, stack, with_example_secrets=False)
    except (EdgeMaterialError, StackConfigError) as exc:
        raise ContainersError(f"stack/overlays/{overlay}: {exc}") from None
    if not rendered.settings:
        rendered.settings = node_settings(stack, overlay)
    return material, rendered


def host_folders(workdir: Path, spec: StackSpec, settings: dict[str, str]) -> dict[str, Path]:
    """The node's folders as this run's (node path -> folder): the NAS library, and the internal drive's folders;
    made with the owner and mode the stack asks, and every pod's own volumes made new."""
    folders: dict[str, Path] = {}
    for key, node_path in settings.items():
        if key.endswith("Path"):
            folders[node_path] = (workdir / "nas" if key == NAS_SETTING
                                  else workdir / "internal-drive" / PurePosixPath(node_path).name)
    for container in spec.containers.values():
        for volume, folder in container.host_folders.items():
            if folder.node_path not in folders:
                raise ContainersError(
                    f"Deployment {container.deployment} mounts hostPath {folder.node_path} (volume {volume}), which "
                    f"is none of the node folders the stack's settings name ({', '.join(sorted(folders))})")
            path = folders[folder.node_path]
            path.mkdir(parents=True, exist_ok=True)
            if folder.uid is not None:
                os.chown(path, folder.uid, folder.gid if folder.gid is not None else -1)
                path.chmod(0o700)
        pod_volumes(workdir, container)
    return folders


def pod_folder(workdir: Path, deployment: str) -> Path:
    """Where one pod's own volumes lie."""
    return workdir / "volumes" / deployment


def pod_volumes(workdir: Path, spec: ContainerSpec) -> None:
    """A pod's own volumes, new (as for every new pod): its emptyDirs, its ConfigMap and Secret files."""
    pod = pod_folder(workdir, spec.deployment)
    shutil.rmtree(pod, ignore_errors=True)
    for volume, empty in spec.empty_dirs.items():
        if empty.memory:
            continue
        path = pod / volume
        path.mkdir(parents=True)
        if empty.group is not None:  # as the kubelet: the pod's fsGroup, setgid, writable by all
            os.chown(path, 0, empty.group)
        path.chmod(0o2777 if empty.group is not None else 0o777)
    for volume, files in spec.file_volumes.items():
        target = pod / volume
        target.mkdir(parents=True)
        for key, data in files.files.items():
            path = target / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            path.chmod(files.mode)
            if files.group is not None:
                os.chown(path, 0, files.group)


def _real_secrets(directory: str, names: list[str]) -> set[str]:
    """copytree ignore: the repository's own secret files stay where they are (examples are copied)."""
    return {n for n in names if not n.endswith(".example")} if Path(directory).name == "secrets" else set()


def secrets_from_example(text: str) -> str:
    """An env file from its example: every password, token or secret a new random value."""
    lines = []
    for line in text.splitlines():
        key, sep, _ = line.partition("=")
        secret = sep and not line.lstrip().startswith("#") and key.strip().upper().endswith(("PASSWORD", "TOKEN",
                                                                                             "SECRET"))
        lines.append(f"{key}={secrets.token_hex(24)}" if secret else line)
    return "\n".join(lines) + "\n"


def node_settings(stack: Path, overlay: str) -> dict[str, str]:
    """The stack-settings of the overlay, or of the overlay it builds on (ci and kind-edge-standin: kind)."""
    import yaml

    from ..stack_checks.rendering import overlay_dir, read_settings

    seen: set[Path] = set()
    pending = [overlay_dir(stack, overlay)]
    while pending:
        folder = pending.pop(0).resolve()
        if folder in seen:
            continue
        seen.add(folder)
        settings = read_settings(folder)
        if settings:
            return settings
        kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text()) or {}
        pending += [folder / r for r in kustomization.get("resources") or []
                    if isinstance(r, str) and (folder / r / "kustomization.yaml").is_file()]
    raise ContainersError(f"stack/overlays/{overlay} names no stack-settings (the node's folders): the containers "
                          "runtime maps those folders to the run's")
