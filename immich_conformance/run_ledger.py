"""The pytest run's ledger on disk: every asset a scenario uploads is written down before its upload starts, so what a
killed run left on a target that outlives it is found and deleted by the next run against that target.

Where the ledger lives: for a target that persists between runs (``--target live``, ``--target cluster --deployed``,
attached containers) one file per target under ``Ledger.default_dir()``, shared with the load test; for a target the run
starts empty, its work folder (or a temporary folder), removed with it.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable
from pathlib import Path

import httpx

from . import run_folders
from .asset_removal import Removal, remove_assets
from .ledger import Ledger, LedgerBusy, LeftoverReport, clean_leftovers
from .targets.base import Target
from .upload_bodies import MultipartUpload

LEDGER_FILE = "ledger.jsonl"


class LeftoversNotCleaned(RuntimeError):
    """An earlier run's leftovers could not all be deleted: this run would add to them."""


class RunLedger:
    """The assets of one pytest run against ``target``, on disk (``ledger``) and by id (``ids``)."""

    def __init__(self, target: Target, ledger: Ledger, scratch: Path | None = None) -> None:
        self.target = target
        self.ledger = ledger
        self.ids: set[str] = set()
        self._checksums: dict[str, str] = {}
        self._scratch = scratch

    @classmethod
    def open(cls, target: Target, progress: Callable[[str], None]) -> RunLedger:
        """Lock the target's ledger; for a target that persists between runs, delete an earlier run's leftovers first
        and say how many there were (LedgerBusy: another run holds it; LeftoversNotCleaned)."""
        target_id = target.lan.url
        scratch = None
        if target.persists_between_runs:
            path = Ledger.default_path(target_id)
        else:
            workdir = getattr(target, "workdir", None)
            if not isinstance(workdir, Path):
                workdir = scratch = run_folders.fresh("immich-conformance-ledger-", progress=progress)
            path = workdir / LEDGER_FILE
        run = cls(target, Ledger(path, target_id), scratch)
        try:
            run.ledger.lock()
        except LedgerBusy as exc:
            holder = str(exc).split("in use by process ", 1)[-1].split(" ", 1)[0]
            raise LedgerBusy(f"another run against {target_id} (process {holder}: a pytest run or a load test) holds "
                             f"the ledger {path}: wait for it to end; two runs at once would delete each other's "
                             "uploads") from None
        if target.persists_between_runs:
            report = run._clean_earlier()
            progress(report.describe(run.ledger))
            if report.failures:
                run.close()
                raise LeftoversNotCleaned(report.describe(run.ledger))
        return run

    def _clean_earlier(self) -> LeftoverReport:
        client = self.target.lan.client(self.target.api_key)
        try:
            report = clean_leftovers(self.ledger, client)
        finally:
            client.close()
        if report.found and not report.failures:
            self.ledger.compact()
        return report

    def intend(self, upload: MultipartUpload, path: str = "") -> None:
        """Before ``upload`` starts: its file's checksum goes on disk."""
        checksum = upload.image.sha1_base64()
        self._checksums[id(upload)] = checksum
        self.ledger.intend(checksum, path=path)

    def record(self, upload: MultipartUpload, response: httpx.Response) -> None:
        """The server's answer to ``upload``: an id, when it made (or already held) the asset."""
        if response.status_code not in (200, 201):
            return
        asset_id = response.json().get("id")
        if not asset_id:
            return
        self.ids.add(asset_id)
        checksum = self._checksums.get(id(upload)) or upload.image.sha1_base64()
        self.ledger.created(checksum, asset_id)

    def remove_all(self) -> Removal:
        """Delete the run's assets and wait for their files; settle the ledger for what is gone, and look up the uploads
        never answered with an id (a cut connection) by checksum."""
        removal = remove_assets(self.target, sorted(self.ids)) if self.ids else Removal()
        if not removal.left:
            self.ledger.deleted(sorted(self.ids))
            with contextlib.suppress(httpx.HTTPError):
                self._clean_earlier()  # the uploads without an id: absent, or deleted now
            self.ledger.compact()
        return removal

    def close(self) -> None:
        self.ledger.unlock()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
