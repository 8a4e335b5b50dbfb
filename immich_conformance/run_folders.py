"""Temporary folders a run makes for itself (a sandbox's work folder and its database socket's, a containers run's work
folder, a port-forward's log folder), and what a run killed outright left of them.

A folder made here carries a mark: a file naming the process that made it (its id and start time, as the containers'
labels do, and its process id namespace: a folder made in another one, say in a container sharing the folder, is left
alone, its maker cannot be seen from here). A run that ends removes its folders; one asked to keep them (``--keep``)
removes their mark instead, and the folder is then the person's. A run killed outright removes nothing, so a run first
removes the folders of its kind whose maker is gone. A folder without the mark (another program's, a kept one, or one
being made this instant: the mark is written whole, by a rename) is never touched.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from .procs import process_alive, process_identity

MARK = ".immich-conformance-run"


def make(prefix: str, parent: Path | None = None) -> Path:
    """A new folder in ``parent`` (the temporary folder), marked as this process's."""
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    pending = folder / f"{MARK}.new"
    pending.write_text(f"{process_identity()} {_pid_namespace()}\n")
    pending.rename(folder / MARK)
    return folder


def fresh(prefix: str, parent: Path | None = None, progress: Callable[[str], None] | None = None) -> Path:
    """A new folder of this process's (``make``), once the folders of its kind whose maker is gone are removed (said
    through ``progress``)."""
    sweep_and_say(prefix, parent, progress)
    return make(prefix, parent)


def sweep_and_say(prefix: str, parent: Path | None = None, progress: Callable[[str], None] | None = None) -> None:
    """``sweep``, and one line through ``progress`` when it removed anything."""
    if (line := said(sweep(prefix, parent))) and progress is not None:
        progress(line)


def unmark(folder: Path) -> None:
    """``folder`` is kept on purpose: no later run removes it."""
    (folder / MARK).unlink(missing_ok=True)


def sweep(prefix: str, parent: Path | None = None) -> list[Path]:
    """Remove the marked folders named ``prefix``* in ``parent`` whose maker no longer runs; those removed."""
    removed = []
    for folder in sorted(Path(parent or tempfile.gettempdir()).glob(f"{prefix}*")):
        try:
            maker, _, namespace = (folder / MARK).read_text().strip().partition(" ")
        except OSError:  # no mark, or not a folder: not a run's
            continue
        if namespace != _pid_namespace() or process_alive(maker):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            removed.append(folder)
    return removed


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return "?"


def said(removed: list[Path]) -> str:
    """One line on what ``sweep`` removed ("" when nothing)."""
    if not removed:
        return ""
    return (f"removed {len(removed)} folder(s) that runs killed before their end left behind (their process was gone): "
            f"{', '.join(str(folder) for folder in removed)}")
