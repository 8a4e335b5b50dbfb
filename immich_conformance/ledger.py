"""A ledger on disk of every asset a run creates on a target, so a run that could not delete them is cleaned up later.

One JSON line per event, appended and fsynced before the call returns (a killed run loses no line):

    {"target": URL, "event": "intent",  "checksum": B64, "path": "lan", "at": T}   written before the upload starts
    {"target": URL, "event": "created", "checksum": B64, "id": ID, "at": T}        when the server answered with an id
    {"target": URL, "event": "deleted", "checksum": B64|null, "id": ID, "at": T}   deleted
    {"target": URL, "event": "absent",  "checksum": B64, "at": T}                  known not to be on the server

``checksum`` is the base64 SHA-1 of the file's bytes (as Immich reports it); ``target`` identifies the server (its LAN
URL). An asset with an intent and neither "deleted" nor "absent" is a leftover. ``clean_leftovers`` looks every
leftover up by checksum (``POST /api/assets/bulk-upload-check``: this finds intents without an id too, and skips ids
already gone) and force-deletes what it finds. Several processes may append to one ledger (each line is one
``write``); a run holds ``lock()`` while it cleans up and compacts.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .immich_client import ImmichClient, json_or_empty
from .user_cache import suite_cache_dir

CHECK_BATCH = 500
DELETE_BATCH = 200


class LedgerBusy(Exception):
    """Another process holds the ledger's lock (a run against the same target is under way)."""


@dataclass
class Entry:
    """One asset of the ledger: its checksum, and its id once the server answered."""

    checksum: str
    path: str = ""
    asset_id: str | None = None
    at: float = 0.0


@dataclass
class LeftoverReport:
    found: int = 0
    """Leftover entries in the ledger for this target."""
    with_id: int = 0
    """Of them, entries whose upload was answered with an id."""
    deleted: int = 0
    """Assets still on the server, now deleted."""
    already_gone: int = 0
    """Entries the server does not hold (deleted some other way, or never stored)."""
    failures: list[str] = field(default_factory=list)

    def describe(self, ledger: Ledger) -> str:
        if not self.found:
            return f"no uploads left by an earlier run against {ledger.target_id} (ledger {ledger.path})"
        text = (f"{self.found} uploads left by an earlier run against {ledger.target_id} found in the ledger "
                f"{ledger.path} ({self.with_id} with an id, {self.found - self.with_id} without): {self.deleted} "
                f"still on the server, deleted; {self.already_gone} not on the server")
        if self.failures:
            text += f"; NOT cleaned up: {'; '.join(self.failures)}"
        return text


class Ledger:
    """The ledger file at ``path``, seen as the entries of one target (``target_id``, e.g. its LAN URL)."""

    def __init__(self, path: Path, target_id: str) -> None:
        self.path = Path(path)
        self.target_id = target_id
        self._lock_fd: int | None = None

    @staticmethod
    def default_dir() -> Path:
        return suite_cache_dir("ledgers")

    @classmethod
    def default_path(cls, target_id: str) -> Path:
        """One file per target under ``default_dir()``, named after the target."""
        slug = re.sub(r"[^A-Za-z0-9]+", "-", target_id).strip("-")[:60] or "target"
        return cls.default_dir() / f"{slug}-{hashlib.sha256(target_id.encode()).hexdigest()[:8]}.jsonl"

    # --- writing -------------------------------------------------------------------------------------------------
    def _append(self, events: Iterable[dict[str, Any]]) -> None:
        now = time.time()
        data = "".join(json.dumps({"target": self.target_id, **e, "at": e.get("at", now)}) + "\n" for e in events)
        if not data:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = "\n" + data  # a line torn by a kill: end it, so it cannot swallow this one
            view = memoryview(data.encode())
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)

    def intend(self, checksum: str, *, path: str = "") -> None:
        """Before an upload starts: its checksum (base64 SHA-1) and the path it takes."""
        self._append([{"event": "intent", "checksum": checksum, "path": path}])

    def created(self, checksum: str, asset_id: str) -> None:
        self._append([{"event": "created", "checksum": checksum, "id": asset_id}])

    def deleted(self, ids: Iterable[str], checksums: Mapping[str, str] | None = None) -> None:
        """Deleted on the server; ``checksums`` (id -> checksum) settles entries whose id the ledger never got."""
        known = checksums or {}
        self._append({"event": "deleted", "id": i, "checksum": known.get(i)} for i in ids)

    def absent(self, checksums: Iterable[str]) -> None:
        """The server holds no asset with these checksums (never stored, or removed another way)."""
        self._append({"event": "absent", "checksum": c} for c in checksums)

    # --- reading -------------------------------------------------------------------------------------------------
    def _lines(self) -> Iterator[dict[str, Any]]:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return
        for line in text.splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue  # a line cut short by a kill or a full disk
            if isinstance(item, dict):
                yield item

    def leftovers(self) -> list[Entry]:
        """This target's entries that were neither deleted nor found absent, oldest first."""
        entries: dict[str, Entry] = {}
        by_id: dict[str, str] = {}
        for item in self._lines():
            if item.get("target") != self.target_id:
                continue
            event, checksum, asset_id = item.get("event"), item.get("checksum"), item.get("id")
            if event == "intent" and checksum:
                entries[checksum] = Entry(checksum, str(item.get("path", "")), None, float(item.get("at", 0.0)))
            elif event == "created" and checksum and asset_id:
                entry = entries.setdefault(checksum, Entry(checksum, at=float(item.get("at", 0.0))))
                entry.asset_id = asset_id
                by_id[asset_id] = checksum
            elif event == "deleted":
                for key in {by_id.get(asset_id or ""), checksum} - {None}:
                    entries.pop(key, None)
            elif event == "absent" and checksum:
                entries.pop(checksum, None)
        return list(entries.values())

    # --- housekeeping --------------------------------------------------------------------------------------------
    def lock(self) -> None:
        """Hold the ledger's lock until ``unlock()`` or the process ends; LedgerBusy when another process holds it."""
        if self._lock_fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self._lock_path
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = lock_path.read_text().strip() or "another process"
            raise LedgerBusy(f"the ledger {self.path} is in use by process {holder} (a load test against the same "
                             "target): wait for it to end, or give this run another --ledger") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd

    def unlock(self) -> None:
        """Release the lock; its file goes too when the ledger itself is gone (nothing left to clean up)."""
        fd, self._lock_fd = self._lock_fd, None
        if fd is None:
            return
        if not self.path.exists():
            with contextlib.suppress(FileNotFoundError):
                self._lock_path.unlink()
        os.close(fd)

    @property
    def _lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    def compact(self) -> None:
        """Rewrite the file without this target's settled entries (atomically); remove it when nothing is left."""
        keep = {e.checksum for e in self.leftovers()}
        kept = [item for item in self._lines()
                if item.get("target") != self.target_id or item.get("checksum") in keep and item["event"] in
                ("intent", "created")]
        if not kept:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            return
        temporary = self.path.with_name(self.path.name + ".compacting")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, "".join(json.dumps(item) + "\n" for item in kept).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, self.path)


def clean_leftovers(ledger: Ledger, client: ImmichClient) -> LeftoverReport:
    """Find every leftover of ``ledger`` on the server by checksum, force-delete it, and settle the ledger.

    ``client`` talks to the ledger's target with an API key of the user who uploaded. A target that does not answer
    ends the clean-up (bounded: one request per batch) and leaves the ledger as it was.
    """
    leftovers = ledger.leftovers()
    report = LeftoverReport(found=len(leftovers), with_id=sum(1 for e in leftovers if e.asset_id))
    try:
        for start in range(0, len(leftovers), CHECK_BATCH):
            batch = leftovers[start:start + CHECK_BATCH]
            response = client.bulk_upload_check({str(i): e.checksum for i, e in enumerate(batch)})
            if response.status_code != 200:
                report.failures.append(f"POST /api/assets/bulk-upload-check answered {response.status_code}: "
                                       f"{response.text[:200]}")
                break
            found: dict[str, str] = {}
            for result in json_or_empty(response).get("results", []):
                if result.get("action") == "reject" and result.get("assetId"):
                    found[batch[int(result["id"])].checksum] = result["assetId"]
            absent = [e.checksum for e in batch if e.checksum not in found]
            ids = sorted(set(found.values()))
            for first in range(0, len(ids), DELETE_BATCH):
                chunk = ids[first:first + DELETE_BATCH]
                deleted = client.delete_assets(chunk, force=True)
                if deleted.status_code != 204:
                    report.failures.append(f"DELETE /api/assets of {len(chunk)} assets answered "
                                           f"{deleted.status_code}: {deleted.text[:200]}")
                    return report
                ledger.deleted(chunk, {found_id: c for c, found_id in found.items()})
                report.deleted += len(chunk)
            ledger.absent(absent)
            report.already_gone += len(absent)
    except httpx.TransportError as exc:
        report.failures.append(f"the target stopped answering ({type(exc).__name__}: {exc}); the rest stays in the "
                               "ledger for the next run")
    return report
