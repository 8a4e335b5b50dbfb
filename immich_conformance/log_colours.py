"""Immich's logs as text: its logger (NestJS) colours every line with ANSI escapes unless ``NO_COLOR`` is set, in a
terminal or not, so a reader that looks at a line's layout takes the colours out first."""

from __future__ import annotations

import re

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def without_colours(text: str) -> str:
    """``text`` without its ANSI escape sequences."""
    return ANSI.sub("", text)
