"""A copy of a user's Immich library (the media location: ``upload/``, ``library/``, …) for a throwaway release.

The user's folder is only ever read: files are copied with their times (``shutil.copy2``); nothing is created,
changed or removed under it. ``tree_state`` records a tree's paths, sizes and modification times, so that a test can
prove the folder did not change.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from .sql_access import Connection, connect

SKIPPED = ("backups",)  # the library's own database backups: not part of the media a restore needs


def _files(src: Path) -> Iterable[Path]:
    for root, dirs, files in os.walk(src):
        rel_root = Path(root).relative_to(src)
        if rel_root == Path("."):
            dirs[:] = [d for d in dirs if d not in SKIPPED]
        for name in files:
            yield rel_root / name


def copy_library(src: Path, dst: Path, sample: Iterable[str] | None = None) -> int:
    """Copy ``src`` into ``dst`` (whole, or only the relative paths in ``sample``); how many files were copied.
    Existing files in ``dst`` with the same relative path are replaced (the release's own ``.immich`` markers)."""
    if not src.is_dir():
        raise FileNotFoundError(f"the library folder {src} does not exist or is not a folder")
    wanted = [Path(p) for p in sample] if sample is not None else list(_files(src))
    copied = 0
    for rel in wanted:
        source = src / rel
        if not source.is_file():
            continue
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        copied += 1
    return copied


def tree_state(root: Path) -> dict[str, tuple[str, int, int]]:
    """Every path under ``root`` (folders too) with its kind, size and modification time in nanoseconds."""
    state: dict[str, tuple[str, int, int]] = {}
    for path in [root, *sorted(root.rglob("*"))]:
        info = path.lstat()
        kind = "dir" if path.is_dir() else "link" if path.is_symlink() else "file"
        state[str(path.relative_to(root))] = (kind, info.st_size if kind == "file" else 0, info.st_mtime_ns)
    return state


def sample_originals(dsn: str | Connection, media: Path, per_user: int) -> list[str]:
    """The originals of ``per_user`` assets of each user (the first ones they uploaded, trash left out), read from a
    restored database whose paths start with ``media``: paths relative to it, for ``copy_library(sample=...)``."""
    with connect(dsn) as conn:
        tables = {r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'").fetchall()}
        if "assets" in tables:
            sql = ("SELECT original_path FROM (SELECT original_path, row_number() OVER (PARTITION BY owner_id "
                   "ORDER BY created_at, id) AS n FROM assets WHERE deleted_at IS NULL) a WHERE n <= %s")
        else:
            sql = ('SELECT "originalPath" FROM (SELECT "originalPath", row_number() OVER (PARTITION BY "ownerId" '
                   'ORDER BY "createdAt", id) AS n FROM asset WHERE "deletedAt" IS NULL) a WHERE n <= %s')
        rows = conn.execute(sql, (per_user,)).fetchall()
    return sorted(str(Path(r[0]).relative_to(media)) for r in rows if Path(r[0]).is_relative_to(media))
