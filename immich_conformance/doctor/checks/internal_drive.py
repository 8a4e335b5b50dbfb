"""The internal drive: Postgres's data folder on a local filesystem (never NFS), owned by the Postgres image's user
with mode 0700, with free space; the machine-learning model cache."""

from __future__ import annotations

from ..node import Node
from ..settings import DoctorSettings
from ..verdicts import Outcome, failed, passed, warned
from .base import Check, free_space

GROUP = "internal-drive"
VOLATILE_FILESYSTEMS = frozenset({"tmpfs", "ramfs"})


def postgres_install(s: DoctorSettings) -> str:
    return f"install -d -o {s.postgres_uid} -g {s.postgres_uid} -m 0700 {s.postgres_path}"


def postgres_folder(node: Node, s: DoctorSettings) -> Outcome:
    if not node.is_dir(s.postgres_path):
        return failed(f"{s.postgres_path} (postgresDataPath) does not exist on the node", postgres_install(s))
    return passed(f"{s.postgres_path} exists")


def postgres_filesystem(node: Node, s: DoctorSettings) -> Outcome:
    mount = node.mount_of(s.postgres_path)
    if mount is None:
        return failed(f"no mount holds {s.postgres_path}", "check the node's mount table (/proc/mounts)")
    found = f"{s.postgres_path} is on {mount.point} ({mount.fstype}, {mount.device})"
    move = "set postgresDataPath to a folder on the node's internal drive"
    if mount.network:
        return failed(f"{found}: a network filesystem; Postgres on NFS/SMB risks corrupting the database",
                      f"{move} (stack/overlays/{s.overlay}/settings.yaml)")
    if mount.fstype in VOLATILE_FILESYSTEMS:
        return failed(f"{found}: held in memory, lost at every reboot", move)
    if mount.fstype == "overlay":
        return warned(f"{found}: an overlay filesystem (a container's own layer?)",
                      f"{move}, unless this node is itself a container with that folder mounted from its host")
    return passed(f"{found}: local")


def postgres_owner(node: Node, s: DoctorSettings) -> Outcome:
    stat = node.stat(s.postgres_path)
    if stat is None:
        return failed(f"{s.postgres_path} does not exist", postgres_install(s))
    found = f"{s.postgres_path} belongs to {stat.uid}:{stat.gid} with mode {stat.mode:04o}"
    fix = f"chown {s.postgres_uid}:{s.postgres_uid} {s.postgres_path} && chmod 0700 {s.postgres_path}"
    if stat.uid != s.postgres_uid:
        return failed(f"{found}; the Postgres image runs as uid {s.postgres_uid} and cannot use it", fix)
    if stat.mode & 0o7777 == 0o700:
        return passed(found)
    if stat.mode & 0o7777 == 0o750:
        return warned(f"{found}: Postgres accepts 0750, the image's own folders are 0700", fix)
    return failed(f"{found}: Postgres refuses a data folder other users can read or write (0700 needed)", fix)


def postgres_space(node: Node, s: DoctorSettings) -> Outcome:
    return free_space(node, s.postgres_path, "the database", s.limits.postgres_warn, s.limits.postgres_fail)


def model_cache(node: Node, s: DoctorSettings) -> Outcome:
    if not node.is_dir(s.models_path):
        return failed(f"{s.models_path} (modelCachePath) does not exist on the node",
                      f"install -d -m 0755 {s.models_path}")
    mount = node.mount_of(s.models_path)
    if mount is not None and mount.network:
        return warned(f"{s.models_path} is on {mount.point} ({mount.fstype}): models load slowly over the network",
                      "set modelCachePath to a folder on the node's internal drive")
    if mount is not None and mount.fstype in VOLATILE_FILESYSTEMS:
        return warned(f"{s.models_path} is on {mount.fstype}: the models are downloaded again after every reboot",
                      "set modelCachePath to a folder on the node's internal drive")
    return passed(f"{s.models_path} exists on {mount.point if mount else '?'} ({mount.fstype if mount else '?'})")


def model_cache_space(node: Node, s: DoctorSettings) -> Outcome:
    return free_space(node, s.models_path, "the model cache", s.limits.models_warn, s.limits.models_fail)


CHECKS = [
    Check("postgres-folder", GROUP, postgres_folder),
    Check("postgres-local-filesystem", GROUP, postgres_filesystem),
    Check("postgres-owner-and-mode", GROUP, postgres_owner),
    Check("postgres-free-space", GROUP, postgres_space),
    Check("model-cache-folder", GROUP, model_cache),
    Check("model-cache-free-space", GROUP, model_cache_space),
]
