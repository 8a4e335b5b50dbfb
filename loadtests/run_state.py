"""This process's share of a load run (``STATE``): what it is aimed at, its ledgers, which paths are down; and what
users wait for: the target's settings, which a worker gets from its master."""

from __future__ import annotations

import logging
from typing import Any

from immich_conformance.ledger import Ledger
from immich_conformance.procs import wait_until
from immich_conformance.targets import Endpoint, Target

from .backoff import Backoff
from .ledger import LedgerBook, UploadLedger
from .target_settings import TargetSettings

log = logging.getLogger("loadtests.upload")

SETTINGS_WAIT = 30.0
PATH_NAMES = {"lan": "the lan path", "external": "the external path", "edge": "the edge (over-limit bodies)"}
"""What a user backs off from: Immich on either path, or the edge alone (it answers over-limit bodies itself)."""


class RunState:
    """This process's share of the run."""

    def __init__(self) -> None:
        self.target: Target | None = None
        """Master or local process only: what the run is aimed at."""
        self.settings: TargetSettings | None = None
        """Every process: the endpoints and credentials the users need."""
        self.ledger = UploadLedger()
        self.disk_ledger: Ledger | None = None
        """Every process: the ledger on disk (the master's choice of file, sent to the workers with the settings)."""
        self.leftovers: dict[str, Any] = {}
        self.paths_down: dict[str, str] = {}
        self.book = LedgerBook()
        self.test_started: float | None = None
        self.cap_breaches: list[str] = []
        self.finished = False


STATE = RunState()


def settings() -> TargetSettings:
    if STATE.settings is None:  # a worker that has not heard from the master yet
        wait_until(lambda: STATE.settings, timeout=SETTINGS_WAIT, what="the target's settings from the master")
    assert STATE.settings is not None
    return STATE.settings


def external(settings: TargetSettings) -> Endpoint:
    if settings.external is None:
        raise RuntimeError("this run has no external URL (all external weights were 0 when it started)")
    return settings.external


def disk_ledger() -> Ledger:
    settings()
    assert STATE.disk_ledger is not None
    return STATE.disk_ledger


def path_state(path: str, backoff: Backoff, *, ok: bool, down: bool, detail: str) -> None:
    """Count a request on ``path`` for one user's backoff; say once per process when a path goes down or comes back."""
    if backoff.record(ok=ok, down=down) and path not in STATE.paths_down:
        STATE.paths_down[path] = detail
        log.warning("%s %s (%s): users back off, up to %.0f s between tries", PATH_NAMES[path],
                    "does not answer" if down else "answers nothing but errors", detail, backoff.cap)
    elif ok and STATE.paths_down.pop(path, None) is not None:
        log.warning("%s answers again", PATH_NAMES[path])
