"""Whether an upgraded Immich is healthy beyond Ready: the error lines of its start-up log, and its job queues.

Immich's server logs through NestJS: ``[Nest] 7  - 12/04/2026, 1:02:03 PM   ERROR [Microservices:DatabaseRepository]
Kysely migrations failed: ...`` (the level right-aligned in 7 characters; ANSI colours around the parts unless
``NO_COLOR`` is set, in the API double too). A server can be Ready and still have logged a failed migration or a
missing vector extension, and its background jobs (file deletions, metadata, thumbnails) may still be running after
the upgrade: the rehearsal reads the one and waits for the other.
"""

from __future__ import annotations

import re

import httpx

from ..immich_client import ImmichClient
from ..log_colours import without_colours
from ..procs import GiveUp, WaitTimeout, wait_until

QUEUE_DRAIN_TIMEOUT = 120.0
QUEUES_PATH = "/api/queues"
PENDING = ("active", "waiting")

NEST_LINE = re.compile(r"^\[Nest\]\s+\d+\s+-\s+.*?\s(?P<level>VERBOSE|DEBUG|LOG|WARN|ERROR|FATAL)\s+\[[^\]]*\]\s")
ERROR_LEVELS = {"ERROR", "FATAL"}
# What Immich says at start when something is wrong, at whatever level (a failed migration is first a WARN naming it).
TROUBLE = re.compile(
    r"\bmigrations?\b.*\bfail"                                   # Migration "…" failed; Kysely migrations failed
    r"|invalid upgrade path"                                     # a skipped required version
    r"|no vector extension|extension is not available"           # pgvecto.rs removed / extension missing
    r"|failed to activate .*extension"
    r"|inconsistent media location"                              # the mount and the database disagree
    r"|failed to (?:read|write) .*\.immich"                      # the storage integrity check (an unmounted NAS)
    r"|\bworker exited with code [1-9]",                         # a worker process died
    re.IGNORECASE,
)
# An error a worker printed outside Nest's logger (its stack frames, "    at …", are left out).
BARE_ERROR = re.compile(r"^(?:[A-Za-z]*Error|Error)(?: \[[^\]]*\])?: \S")


class QueuesUnreadable(GiveUp):
    """The server would not tell its queue state (a refused or unknown request): waiting cannot help."""


class QueuesNotDrained(AssertionError):
    """Jobs were still active or waiting when the wait ended (the message lists them)."""


def startup_errors(log_text: str) -> list[str]:
    """The lines of an Immich server log that say its start went wrong: ERROR and FATAL lines, failed migrations,
    a missing vector extension, an inconsistent media location, a failed storage check, a dead worker, and errors
    printed outside the logger. Normal LOG and WARN lines pass. Each line once, colours removed, in log order."""
    found: dict[str, None] = {}
    for raw in log_text.splitlines():
        line = without_colours(raw).rstrip()
        nest = NEST_LINE.match(line)
        if (nest and nest["level"] in ERROR_LEVELS) or TROUBLE.search(line) or (not nest and BARE_ERROR.match(line)):
            found.setdefault(line, None)
    return list(found)


def pending_jobs(client: ImmichClient) -> dict[str, dict[str, int]]:
    """The queues that have active or waiting jobs: {queue: {"active": n, "waiting": m}}."""
    response = client.get(QUEUES_PATH)
    if response.status_code != 200:
        if 400 <= response.status_code < 500:
            raise QueuesUnreadable(f"GET {QUEUES_PATH} answered {response.status_code}: {response.text[:200]} "
                                   "(the queue state needs an admin's API key with queue.read)")
        raise httpx.HTTPStatusError(f"GET {QUEUES_PATH} answered {response.status_code}", request=response.request,
                                    response=response)
    pending = {}
    for queue in response.json():
        counts = {k: int(queue["statistics"].get(k, 0)) for k in PENDING}
        if any(counts.values()):
            pending[queue["name"]] = counts
    return pending


def describe(pending: dict[str, dict[str, int]]) -> str:
    return "; ".join(f"{name}: " + ", ".join(f"{n} {k}" for k, n in counts.items() if n)
                     for name, counts in sorted(pending.items()))


def wait_for_queues_drained(client: ImmichClient, timeout: float = QUEUE_DRAIN_TIMEOUT,
                            interval: float = 0.5) -> None:
    """Poll the server's job queues until none has an active or waiting job; QueuesNotDrained names what is still
    queued when ``timeout`` passes."""
    last: dict[str, dict[str, int]] | None = None

    def drained() -> bool:
        nonlocal last
        last = pending_jobs(client)
        return not last

    try:
        wait_until(drained, timeout=timeout, interval=interval, what=f"the job queues ({QUEUES_PATH}) drained")
    except WaitTimeout as exc:
        still = describe(last) if last else f"the queue state could not be read ({exc})"
        raise QueuesNotDrained(f"Immich's job queues did not drain within {timeout:.0f}s: {still}") from None
