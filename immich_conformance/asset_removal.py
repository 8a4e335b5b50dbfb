"""Removing the suite's own assets at the end of a run, and waiting until Immich has really removed their files.

Immich answers a forced delete with 204 at once and removes the originals later, in a background job; a server
stopped before the job runs leaves them on the NAS for good. So the clean-up looks up where each original lies, asks
for the delete, and waits (bounded) until those files are gone from the NAS before the target may stop. Where this
machine cannot read the NAS, it waits until Immich no longer reports the assets.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .procs import GiveUp, WaitTimeout, wait_until
from .targets.base import NAS_SETTLE_SECONDS, Target, TargetUnsupported

GONE = (400, 404)
"""What Immich answers for an asset id it does not hold (400 "Not found or no asset.read access"); any other answer
is not a sign the asset is gone."""
STUCK_AFTER = 2.0
"""Seconds after which files still on a NAS that has a storage problem (read-only) are taken as staying."""


@dataclass
class Removal:
    asked: int = 0
    left: list[str] = field(default_factory=list)
    """What could not be removed, one item each (a file on the NAS, an asset id, or a refused request)."""
    cause: str = ""
    """Why files stayed, when the NAS says so (read-only)."""

    def summary(self) -> str:
        shown = ", ".join(self.left[:5]) + (f" and {len(self.left) - 5} more" if len(self.left) > 5 else "")
        cause = f"{self.cause}; so " if self.cause else ""
        return (f"{cause}the suite could not remove {len(self.left)} of its {self.asked} assets from the target: "
                f"{shown}; delete them in Immich (or by hand on the NAS) before the next run")


def remove_assets(target: Target, ids: list[str], timeout: float = NAS_SETTLE_SECONDS) -> Removal:
    """Force-delete ``ids`` with the suite's key and wait until their originals are gone; what stayed."""
    removal = Removal(asked=len(ids))
    client = target.lan.client(target.api_key)
    try:
        originals: dict[str, str] = {}
        for asset_id in ids:
            found = client.asset(asset_id)
            if found.status_code == 200:
                originals[asset_id] = found.json()["originalPath"]
            elif found.status_code not in GONE:
                removal.left.append(f"{asset_id} (GET /api/assets/{{id}} answered {found.status_code})")
        if not originals:
            return removal
        answer = client.delete_assets(sorted(originals), force=True)
        if answer.status_code != 204:
            removal.left += [f"DELETE /api/assets answered {answer.status_code}: {answer.text[:200]}"]
            return removal
        try:
            files = {asset_id: target.nas_path(path) for asset_id, path in originals.items()}
        except (TargetUnsupported, AssertionError):  # no view of the NAS, or not where Immich puts its files
            files = {}
        if files:
            remaining = _wait(lambda: [str(p) for p in files.values() if p.exists()], timeout,
                              "the deleted assets' files gone from the NAS", target, removal)
        else:
            remaining = _wait(lambda: [i for i in originals if client.asset(i).status_code == 200], timeout,
                              "the deleted assets gone from Immich")
        removal.left += remaining
        return removal
    finally:
        client.close()


def _wait(still_there: Callable[[], list[str]], timeout: float, what: str, target: Target | None = None,
          removal: Removal | None = None) -> list[str]:
    """Poll ``still_there`` (what remains) until it is empty or ``timeout`` seconds pass; what remained. With
    ``target``: stop early when files stay while its NAS has a storage problem (the cause goes on ``removal``)."""
    started = time.monotonic()

    def gone() -> bool:
        if not still_there():
            return True
        if target is not None and removal is not None and time.monotonic() - started > STUCK_AFTER \
                and (problem := target.storage_problem()):
            removal.cause = problem
            raise GiveUp(problem)
        return False

    try:
        wait_until(gone, timeout=timeout, interval=0.2, what=what)
    except (WaitTimeout, GiveUp):
        return list(still_there())
    return []
