"""The fault catalogue: each fault a run can meet, how the test injects it, and the one line the run must print.

Like the stack's mutation catalogue (``immich_conformance.stack_checks.mutations``), each entry is a deliberate break;
a fault whose run does not end in its line (or loses an accepted upload, or leaves something behind for the next run)
shows a hole in how the suite fails. The README lists the catalogue ("Faults the suite names").

Two runs carry the faults:
- ``features``: ``pytest features/ -m "uploads or bodies"`` on the processes sandbox, its NAS on a folder of the
  test's (``--sandbox-nas``), kept (``--keep-sandbox``) to read the run's ledger; a plugin (``fault_plugin``) injects
  the fault when the third scenario starts, after two uploads were answered 201.
- ``load``: ``locust -f loadtests/upload.py`` headless against a sandbox of the test's (``--host``), the fault
  injected once some uploads were answered 201.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from pathlib import Path

TIME = r"\d\d:\d\d:\d\d"


@dataclass(frozen=True)
class Fault:
    name: str
    harness: str
    """"features" or "load"."""
    injected: str
    """How the test injects it (the README's words)."""
    inject: str
    """For the features plugin: kill:<component>, readonly (remount the NAS bind mount read-only), fill (write the
    NAS filesystem full); for the load test: nothing (no target), fill."""
    diagnosis: str
    """A regular expression for the one line the run prints; ``{nas}`` is the NAS folder."""
    nas: str = "folder"
    """What the NAS folder is: "folder" (under tmp), "bind" (a bind mount of it, for read-only), "loop" (a small
    ext4 filesystem)."""


def killed(component: str) -> str:
    return rf"{component} exited with signal 9 \(SIGKILL\) at {TIME}; last log lines attached"


CATALOGUE: list[Fault] = [
    Fault("immich-killed", "features", "SIGKILL to the Immich double's process group mid-run", "kill:immich-server",
          killed("immich-server")),
    Fault("postgres-killed", "features", "SIGKILL to PostgreSQL's process group mid-run", "kill:postgres",
          killed("postgres")),
    Fault("origin-proxy-killed", "features", "SIGKILL to the origin proxy (Envoy) mid-run", "kill:origin-proxy",
          killed("origin-proxy")),
    Fault("edge-killed", "features", "SIGKILL to the Cloudflare edge stand-in mid-run", "kill:edge", killed("edge")),
    Fault("nas-read-only", "features", "the NAS folder, a bind mount, remounted read-only mid-run "
          "(`mount -o remount,bind,ro`: root ignores chmod)", "readonly",
          r"the NAS folder {nas} is read-only \(its filesystem is mounted read-only\): Immich cannot store uploads "
          r"there \(it answers 500 and logs EROFS\); mount it read-write", nas="bind"),
    Fault("nas-full", "features", "the NAS folder on a 20 MB ext4 loop mount, written full mid-run", "fill",
          r"the NAS folder {nas} is full \(no space left on device\), \d+ KiB free of \d+ MiB: Immich cannot store "
          r"uploads there \(it answers 500 and logs ENOSPC\); free space on it or give a larger one", nas="loop"),
    Fault("nothing-listening", "load", "the load test aimed at ports nothing listens on", "nothing",
          r"the LAN path http://127\.0\.0\.1:\d+ does not answer .*"),
    Fault("nas-full-under-load", "load", "the load test's sandbox NAS on a 20 MB ext4 loop mount, written full "
          "mid-run", "fill",
          r"the NAS folder {nas} is full \(no space left on device\), \d+ KiB free of \d+ MiB: Immich cannot store "
          r"uploads there \(it answers 500 and logs ENOSPC\); free space on it or give a larger one", nas="loop"),
]


def fill(folder: Path) -> Path:
    """Write a file at the root of the filesystem holding ``folder`` (its parent) until the filesystem is full, root's
    reserve too; the file."""
    filler = folder.parent / "filler"
    with filler.open("wb") as f:
        for chunk in (1024 * 1024, 4096):
            try:
                while True:
                    f.write(b"\0" * chunk)
                    f.flush()
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
    return filler
