"""The pytest run's ledger: where it lives, what it writes before an upload starts, and a second run at once refused."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from immich_conformance.ledger import Ledger, LedgerBusy
from immich_conformance.run_ledger import LEDGER_FILE, RunLedger
from immich_conformance.upload_bodies import MultipartUpload, PhotoSpec


def fresh_target(workdir: Path) -> SimpleNamespace:
    """A target the run started empty (no clean-up at the start), with a work folder."""
    return SimpleNamespace(persists_between_runs=False, workdir=workdir, lan=SimpleNamespace(url="http://lan:1"))


def test_an_upload_is_on_disk_before_it_starts_and_its_id_once_answered(tmp_path: Path) -> None:
    run = RunLedger.open(fresh_target(tmp_path), print)  # type: ignore[arg-type]
    try:
        up = MultipartUpload.for_photo(PhotoSpec.unique(2048))
        run.intend(up)
        on_disk = Ledger(tmp_path / LEDGER_FILE, "http://lan:1")
        assert [e.checksum for e in on_disk.leftovers()] == [up.image.sha1_base64()]
        run.record(up, httpx.Response(201, json={"id": "asset-1", "status": "created"}))
        assert on_disk.leftovers()[0].asset_id == "asset-1" and run.ids == {"asset-1"}
        run.record(up, httpx.Response(413, text="too large"))
        assert run.ids == {"asset-1"}
    finally:
        run.close()


def test_a_second_run_against_the_same_target_at_once_is_refused(tmp_path: Path) -> None:
    first = RunLedger.open(fresh_target(tmp_path), print)  # type: ignore[arg-type]
    try:
        with pytest.raises(LedgerBusy, match=r"another run against http://lan:1 \(process \d+"):
            RunLedger.open(fresh_target(tmp_path), print)  # type: ignore[arg-type]
    finally:
        first.close()
