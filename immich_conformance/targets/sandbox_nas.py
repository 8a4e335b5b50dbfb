"""A NAS folder given to the sandbox (``--sandbox-nas``; a mount point, e.g. a small filesystem to see a full disk).

The folder must be empty, or hold only what an earlier sandbox left there: the sandbox marks the folder as its own
while it runs and empties it when it stops. A sandbox that could not (killed, the folder read-only by then) leaves the
mark, and the next sandbox started on the folder removes what is there and says how much it found. Nothing in a
folder without the mark is ever touched. ``lost+found`` (the root of a fresh ext4 filesystem) is left alone.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable
from pathlib import Path

MARK = ".immich-conformance-sandbox"
MARK_TEXT = "The immich-conformance sandbox's NAS folder: emptied when it stops, or by the next sandbox started here.\n"
NOT_OURS = {"lost+found"}


class NasFolderError(ValueError):
    """The folder cannot be the sandbox's NAS; the message names it and what is wrong."""


def _entries(nas: Path) -> list[Path]:
    return [p for p in nas.iterdir() if p.name not in NOT_OURS and p.name != MARK]


def check(nas: Path) -> Path:
    """The folder, resolved, made when missing; NasFolderError when it is a file, not empty and not a sandbox's, or
    cannot be written."""
    nas = nas.resolve()
    if nas.exists() and not nas.is_dir():
        raise NasFolderError(f"the sandbox NAS folder {nas} is a file, not a folder: give a new or empty folder")
    try:
        nas.mkdir(parents=True, exist_ok=True)
        if _entries(nas) and not (nas / MARK).exists():
            raise NasFolderError(f"the sandbox NAS folder {nas} is not empty and no sandbox left it so: give a new "
                                 "or empty folder (the sandbox empties it when it stops)")
        probe = nas / ".write-test"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise NasFolderError(f"the sandbox NAS folder {nas} cannot be written ({exc.strerror}): give a folder you "
                             "can write to") from None
    return nas


def claim(nas: Path, progress: Callable[[str], None]) -> None:
    """Remove what an earlier sandbox left in ``nas`` (saying how much), then mark the folder as this sandbox's."""
    left = _entries(nas)
    if left and (nas / MARK).exists():
        files = sum(1 for p in left for f in ([p] if not p.is_dir() else p.rglob("*")) if not f.is_dir())
        _remove(left)
        progress(f"the NAS folder {nas} held {files} files an earlier sandbox left (it stopped before it could empty "
                 "it): removed")
    (nas / MARK).write_text(MARK_TEXT)


def empty(nas: Path) -> str | None:
    """Remove what the sandbox put in ``nas``, the mark last; a line saying what stays when that fails."""
    left = _entries(nas)
    try:
        _remove(left)
        (nas / MARK).unlink(missing_ok=True)
    except OSError as exc:
        stays = sum(1 for p in _entries(nas) for f in ([p] if not p.is_dir() else p.rglob("*")) if not f.is_dir())
        return (f"the NAS folder {nas} could not be emptied ({exc.strerror}): {stays} files stay; the next sandbox "
                "started on it removes them")
    return None


def _remove(paths: list[Path]) -> None:
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
