"""The suite's folder in the user's cache: ``$XDG_CACHE_HOME/immich-conformance`` (default ``~/.cache/...``).

What is kept there between runs (the Immich CLI, the ledgers, the PostgreSQL template) is the suite's own and can be
deleted at any time: the next run makes it again."""

from __future__ import annotations

import os
from pathlib import Path


def suite_cache_dir(name: str) -> Path:
    """The folder ``name`` of the suite's cache (not created here)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "immich-conformance" / name
