"""The NAS library: a folder that exists only on the share, on a mount of its own (a network filesystem or the type
the user declares), read-write, with Immich's ``.immich`` markers where Immich has run, and free space."""

from __future__ import annotations

import posixpath

from ..node import Node
from ..settings import DoctorSettings
from ..verdicts import Outcome, failed, passed, warned
from .base import Check, free_space

# Immich's media folders under its media location; each gets a hidden .immich file at the server's first start.
MEDIA_FOLDERS = ("upload", "library", "thumbs", "encoded-video", "profile", "backups")
MARKER = ".immich"
GROUP = "nas"


def share_point(node: Node, s: DoctorSettings) -> str:
    """Where the share is mounted: the current mount when it is one of its own, else the parent of the folder."""
    mount = node.mount_of(s.nas_path)
    if mount is not None and mount.point != "/":
        return mount.point
    return posixpath.dirname(s.nas_path.rstrip("/")) or "/"


def library_folder(node: Node, s: DoctorSettings) -> Outcome:
    mount = node.mount_of(s.nas_path)
    if not node.is_dir(s.nas_path):
        return failed(f"{s.nas_path} (nasLibraryPath) does not exist on the node",
                      f"mount the share (mount {share_point(node, s)}), then create the folder on it: "
                      f"mkdir {s.nas_path}")
    if mount is not None and mount.point == s.nas_path and mount.point != "/":
        return failed(f"{s.nas_path} is the share's mount point itself: when the share is not mounted the empty "
                      "folder is still there and photos would go to the node's disk",
                      f"point nasLibraryPath at a folder on the share: mkdir {s.nas_path}/immich and set "
                      f"nasLibraryPath: {s.nas_path}/immich in stack/overlays/{s.overlay}/settings.yaml")
    return passed(f"{s.nas_path} is a folder below the mount point {mount.point if mount else '?'}")


def own_mount(node: Node, s: DoctorSettings) -> Outcome:
    mount = node.mount_of(s.nas_path)
    root = node.mount_of("/")
    if mount is None or mount.point == "/":
        return failed(f"{s.nas_path} is on the root filesystem: the share is not mounted",
                      f"mount the NAS share at {share_point(node, s)} (mount {share_point(node, s)}, or add it to "
                      "/etc/fstab: see the boot-mount check)")
    if root is not None and mount.device == root.device and not mount.network:
        return failed(f"{s.nas_path} is on {mount.point}, a mount of {mount.device}, the root disk's own device",
                      f"mount the NAS share at {mount.point} instead of a folder of the root disk")
    return passed(f"{s.nas_path} is on {mount.point} ({mount.device}), a mount of its own")


def filesystem_type(node: Node, s: DoctorSettings) -> Outcome:
    mount = node.mount_of(s.nas_path)
    if mount is None or mount.point == "/":
        return failed(f"{s.nas_path} is on the root filesystem ({mount.fstype if mount else '?'}), not a share",
                      f"mount the NAS share at {share_point(node, s)}")
    found = f"{mount.point} is {mount.fstype} ({mount.device})"
    if mount.network:
        return passed(f"{found}: a network filesystem")
    if mount.fstype in s.nas_fstypes:
        return passed(f"{found}: the type declared with --nas-fstype")
    if mount.fstype.startswith("fuse"):
        return warned(f"{found}: a FUSE filesystem, which may or may not be a network one",
                      f"if it is the NAS, say so: immich-conformance doctor --nas-fstype {mount.fstype}")
    return failed(f"{found}: not a network filesystem (NFS, SMB)",
                  f"mount the NAS share there; if a local disk is meant, say so: --nas-fstype {mount.fstype}")


def read_write(node: Node, s: DoctorSettings) -> Outcome:
    mount = node.mount_of(s.nas_path)
    if mount is None:
        return failed(f"no mount holds {s.nas_path}", f"mount the NAS share at {share_point(node, s)}")
    options = ",".join(mount.options)
    if "ro" in mount.options:
        return failed(f"{mount.point} is mounted read-only ({options})",
                      f"mount it read-write: mount -o remount,rw {mount.point} (and rw in /etc/fstab)")
    if mount.network and "soft" in mount.options:
        return warned(f"{mount.point} is an NFS soft mount ({options}): writes can be lost on a timeout",
                      f"mount it with hard instead of soft (in /etc/fstab), then mount -o remount {mount.point}")
    return passed(f"{mount.point} is mounted read-write ({options})")


def markers(node: Node, s: DoctorSettings) -> Outcome:
    entries = node.listdir(s.nas_path)
    if entries is None:
        return warned(f"not checked: {s.nas_path} does not exist or cannot be listed (see nas-library-folder)",
                      f"mount the share and create {s.nas_path} on it")
    present = [name for name in MEDIA_FOLDERS if name in entries]
    if not entries:
        return passed(f"{s.nas_path} is empty: Immich has not run here yet (it writes its markers at first start)")
    if not present:
        return warned(f"{s.nas_path} holds {len(entries)} entries but none of Immich's folders "
                      f"({', '.join(MEDIA_FOLDERS)})",
                      "check that nasLibraryPath is Immich's media location (UPLOAD_LOCATION of a Compose install)")
    unmarked = [name for name in present if not node.exists(posixpath.join(s.nas_path, name, MARKER))]
    if unmarked:
        return failed(f"no {MARKER} marker in {', '.join(unmarked)} under {s.nas_path}: Immich refuses to start "
                      "on a folder it wrote to before that lost its marker",
                      "check that the right share is mounted there; if the data is right (markers lost in a copy): "
                      + " && ".join(f"touch {posixpath.join(s.nas_path, n, MARKER)}" for n in unmarked))
    return passed(f"{MARKER} markers in {', '.join(present)} under {s.nas_path}")


def space(node: Node, s: DoctorSettings) -> Outcome:
    return free_space(node, s.nas_path, "the library", s.limits.nas_warn, s.limits.nas_fail)


CHECKS = [
    Check("nas-library-folder", GROUP, library_folder),
    Check("nas-own-mount", GROUP, own_mount),
    Check("nas-filesystem-type", GROUP, filesystem_type),
    Check("nas-read-write", GROUP, read_write),
    Check("nas-immich-markers", GROUP, markers),
    Check("nas-free-space", GROUP, space),
]
