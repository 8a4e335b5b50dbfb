"""Whether a NAS folder this machine can see can take a photo now, said in one line when it cannot.

Immich (and its double) answer 500 to an upload whose file cannot be written (ENOSPC, EROFS, EACCES) and say why
only in their log; a scenario or a load test that sees the 500 asks here what is wrong with the NAS.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

FULL_BELOW = 1024 * 1024
"""Less free space than this (one upload chunk or so) is a full NAS."""
PROBE_PREFIX = ".immich-conformance-probe-"
MB = 1024 * 1024

_WHY = {
    errno.EROFS: "is read-only (its filesystem is mounted read-only)",
    errno.ENOSPC: "is full (no space left on device)",
    errno.EDQUOT: "is over its disk quota",
    errno.EACCES: "cannot be written (permission denied)",
    errno.EPERM: "cannot be written (operation not permitted)",
}
_FIX = {
    errno.EROFS: "mount it read-write",
    errno.ENOSPC: "free space on it or give a larger one",
    errno.EDQUOT: "raise the quota or free space on it",
    errno.EACCES: "give the server's user write access to it",
    errno.EPERM: "give the server's user write access to it",
}


def _said(folder: Path, code: int, detail: str = "", why: str = "") -> str:
    why = why or _WHY.get(code, f"cannot be written ({os.strerror(code)})")
    fix = _FIX.get(code, "check the folder and its filesystem")
    return (f"the NAS folder {folder} {why}{detail}: Immich cannot store uploads there (it answers 500 and logs "
            f"{errno.errorcode.get(code, code)}); {fix}")


def free_bytes(folder: Path) -> tuple[int, int]:
    """Free and total bytes of the filesystem holding ``folder`` (root may also use the blocks reserved for it)."""
    st = os.statvfs(folder)
    free = st.f_bfree if os.geteuid() == 0 else st.f_bavail
    return free * st.f_frsize, st.f_blocks * st.f_frsize


def nas_problem(folder: Path, *, probe: bool = True) -> str | None:
    """Why ``folder`` cannot take a file now, in one line (what, where, how to fix); None when it can. ``probe``:
    also write (and remove) a small file of its own there, which finds a folder not writable for this user; without
    it only the filesystem's flags and free space are read (for a NAS that is not the suite's)."""
    try:
        st = os.statvfs(folder)
    except OSError as exc:
        return (f"the NAS folder {folder} cannot be reached ({exc.strerror}): Immich cannot store uploads there; "
                "mount it again")
    if st.f_flag & os.ST_RDONLY:
        return _said(folder, errno.EROFS)
    free, total = free_bytes(folder)
    if free < FULL_BELOW:
        return _said(folder, errno.ENOSPC, f", {free // 1024} KiB free of {total // MB} MiB")
    if not probe:
        return None
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=PROBE_PREFIX) as probe:
            probe.write(b"\0" * 4096)
            probe.flush()
    except OSError as exc:
        return _said(folder, exc.errno or errno.EIO)
    return None


def errno_in_log(text: str) -> int | None:
    """The write error a server's log names (Node's "ENOSPC: no space left on device", Python's "[Errno 28] No space
    left on device"), if any."""
    lowered = text.lower()
    for code in (errno.ENOSPC, errno.EROFS, errno.EDQUOT):
        if errno.errorcode[code].lower() in lowered or os.strerror(code).lower() in lowered:
            return code
    return None


def log_problem(folder: Path, log: str) -> str | None:
    """When a server's log shows a write error on the NAS although the folder looks fine now (a large upload that did
    not fit, space freed since): the line for it."""
    code = errno_in_log(log)
    if code is None:
        return None
    if code != errno.ENOSPC:
        return _said(folder, code)
    free, total = free_bytes(folder)
    return _said(folder, code, why=f"ran out of space ({free // MB} MiB free of {total // MB} MiB now)")
