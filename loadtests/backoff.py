"""Backing off a path that is down: a user whose requests on a path keep failing waits longer and longer (doubling,
bounded) before its next try, so a dead target gets a handful of requests, not hundreds a second. One success resets
the wait.

A path is down from its first request without an answer from Immich (no answer at all, or a gateway saying the
server behind it is down); other failures (a 500, a 401) are answers, counted as measured, and back off only when
``ERROR_STREAK`` of them come in a row (a path that answers nothing but errors).
"""

from __future__ import annotations

from dataclasses import dataclass

FIRST_WAIT = 0.25
MAX_WAIT = 5.0
ERROR_STREAK = 10
# No answer at all (0), or a gateway's "the server behind me is down" (the origin proxy's 502/503/504, Cloudflare's 52x
# and 530): the path is down, not the request wrong.
DOWN_STATUSES = frozenset({0, 502, 503, 504, *range(520, 531)})


def path_is_down(status: int | None) -> bool:
    return status is None or status in DOWN_STATUSES


@dataclass
class Backoff:
    """Consecutive failures of one user on one path, and the wait they call for."""

    first: float = FIRST_WAIT
    cap: float = MAX_WAIT
    failures: int = 0
    """Failures that count towards the wait."""
    errors: int = 0
    """Consecutive failures of any kind."""

    def record(self, *, ok: bool, down: bool = False) -> bool:
        """Count one request; True when this one starts the backoff (the path just went down)."""
        if ok:
            self.failures = self.errors = 0
            return False
        self.errors += 1
        if down or self.errors >= ERROR_STREAK:
            self.failures += 1
            return self.failures == 1
        return False

    @property
    def wait(self) -> float:
        if not self.failures:
            return 0.0
        return min(self.cap, self.first * 2 ** min(self.failures - 1, 32))
