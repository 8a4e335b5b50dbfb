"""The record of every upload a run sent: what was sent (so its SHA-1 can be recomputed), where, and what came back.

Each process keeps an ``UploadLedger``. A worker ships its records to the master in batches (with its stats reports,
and a final batch when its users stop); the master (or a local run) gathers them in a ``LedgerBook``, which knows
whether every worker's last batch arrived.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from immich_conformance.upload_bodies import PhotoSpec

RECENT_IDS = 2000


@dataclass(frozen=True)
class UploadRecord:
    path: str
    """"lan" or "external"."""
    asset_id: str | None
    """The id of a 201 answer; None when no 201 came back (failed, refused, or interrupted)."""
    size: int
    """Image bytes."""
    nonce: str
    """The image's nonce (hex): with ``size`` it recreates the exact bytes sent."""
    body_bytes: int
    """The whole request body (multipart framing included)."""
    at: float
    """Wall-clock time of the answer (or of the failure)."""

    @classmethod
    def for_photo(cls, path: str, image: PhotoSpec, body_bytes: int, asset_id: str | None, at: float) -> UploadRecord:
        return cls(path, asset_id, image.size, image.nonce.hex(), body_bytes, at)

    @property
    def image(self) -> PhotoSpec:
        return PhotoSpec(size=self.size, nonce=bytes.fromhex(self.nonce))

    @property
    def created(self) -> bool:
        return self.asset_id is not None


class UploadLedger:
    """One process's uploads, waiting to be shipped; and the ids it created, for the browsing users."""

    def __init__(self) -> None:
        self._outbox: list[UploadRecord] = []
        self.shipped = 0
        self._recent: deque[str] = deque(maxlen=RECENT_IDS)

    def add(self, record: UploadRecord) -> None:
        self._outbox.append(record)
        if record.asset_id:
            self._recent.append(record.asset_id)

    def random_asset_id(self) -> str | None:
        return random.choice(self._recent) if self._recent else None

    def ship(self, *, final: bool) -> dict[str, Any]:
        """Take every record not shipped yet; ``final`` marks the last batch of a test (the users have stopped)."""
        records, self._outbox = self._outbox, []
        self.shipped += len(records)
        return {"records": [asdict(r) for r in records], "total": self.shipped, "final": final}


@dataclass
class _Source:
    received: int = 0
    announced: int = 0
    open: bool = False
    """Records arrived since the source's last final batch."""


@dataclass
class LedgerBook:
    """Every record of a run, gathered from all processes."""

    records: list[UploadRecord] = field(default_factory=list)
    _sources: dict[str, _Source] = field(default_factory=dict)

    def absorb(self, source: str, batch: Mapping[str, Any]) -> None:
        state = self._sources.setdefault(source, _Source())
        records = [UploadRecord(**r) for r in batch.get("records", [])]
        self.records.extend(records)
        state.received += len(records)
        state.announced = max(state.announced, int(batch.get("total", 0)))
        if batch.get("final"):
            state.open = False
        elif records:
            state.open = True

    def incomplete_sources(self) -> list[str]:
        """Sources whose last batch did not arrive: their latest uploads are missing from the book."""
        return sorted(name for name, s in self._sources.items() if s.open or s.received < s.announced)

    def created(self) -> list[UploadRecord]:
        return [r for r in self.records if r.created]

    def unconfirmed(self) -> list[UploadRecord]:
        return [r for r in self.records if not r.created]

    def bytes_created(self, path: str, since: float, until: float) -> int:
        return sum(r.body_bytes for r in self.records if r.created and r.path == path and since <= r.at <= until)

    @staticmethod
    def ids(records: Iterable[UploadRecord]) -> list[str]:
        return [r.asset_id for r in records if r.asset_id]
