"""The suite's folder in the user's cache: ``$XDG_CACHE_HOME/immich-conformance`` (default ``~/.cache/...``).

What is kept there between runs is the suite's own: the Immich CLI and the PostgreSQL template (either can be deleted at
any time: the next run makes it again), and the ledgers (which record what runs uploaded, for the next run to clean
up: keep them)."""

from __future__ import annotations

import os
from pathlib import Path


def suite_cache_dir(name: str) -> Path:
    """The folder ``name`` of the suite's cache (not created here)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "immich-conformance" / name
