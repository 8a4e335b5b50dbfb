"""The shared memory a PostgreSQL server killed outright (SIGKILL) leaves behind, and its removal.

With ``dynamic_shared_memory_type=mmap`` (LocalPostgres sets it) the server's dynamic segments are files of its data
folder and go with it; what stays is the small System V segment PostgreSQL keeps to tell whether a data folder is in
use. A server stopped normally removes it; a killed one cannot.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from .procs import WaitTimeout, wait_until

DETACH_TIMEOUT = 10.0  # a killed server's other processes exit on their own once they see it gone


def server_of(data_dir: Path) -> tuple[int, int, int] | None:
    """(postmaster pid, segment key, segment id) from the data folder's postmaster.pid; None without a whole one."""
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
        key, shmid = (int(value) for value in lines[6].split())
        return int(lines[0]), key, shmid
    except (OSError, IndexError, ValueError):
        return None


def release_killed_server_memory(data_dir: Path) -> bool:
    """Remove the System V shared memory segment a server killed outright (SIGKILL) left: the small one PostgreSQL
    keeps beside its mmap'd memory to tell whether a data directory is in use, named in the postmaster.pid that server
    left. Only when that server's process is gone and nothing is attached to the segment; True when one was removed."""
    server = server_of(data_dir)
    if server is None:
        return False
    pid, key, shmid = server
    try:
        os.kill(pid, 0)
        return False  # still running
    except ProcessLookupError:
        pass
    except PermissionError:
        return False

    def detached() -> bool:  # the server's other processes may still be exiting, attached
        return not any(segment[:2] == (key, shmid) and segment[2] for segment in shared_memory_segments())

    try:
        wait_until(detached, timeout=DETACH_TIMEOUT, interval=0.1, what=f"the killed server's processes detached "
                   f"from its shared memory segment {shmid}")
    except WaitTimeout:
        return False
    if (key, shmid, 0) not in shared_memory_segments():
        return False
    return subprocess.run(["ipcrm", "-m", str(shmid)], capture_output=True).returncode == 0


def shared_memory_segments() -> set[tuple[int, int, int]]:
    """(key, id, processes attached) of every System V shared memory segment of this machine."""
    try:
        rows = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
    except OSError:
        return set()
    return {(int(fields[0]), int(fields[1]), int(fields[6])) for fields in (row.split() for row in rows)}
