"""After a run: nothing the server accepted may be lost, and nothing the run uploaded may stay behind.

Every upload answered 201 is looked up (``GET /api/assets/{id}``): Immich's checksum must be the SHA-1 of the bytes
sent, and, when the NAS can be read from here, the file at ``originalPath`` must exist with that SHA-1. Then every
uploaded asset is deleted (``DELETE /api/assets``, force). Uploads that got no 201 (failed or interrupted) are looked
up by checksum, and deleted too if the server kept them anyway. A target that stops answering ends either step at
once: what was not checked is counted as "could not be verified", what was not deleted stays in the ledger on disk.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from immich_conformance.immich_client import ImmichClient, json_or_empty
from immich_conformance.targets import Target, TargetUnsupported

from .ledger import UploadRecord

DELETE_BATCH = 200
CHECK_BATCH = 500
READ_CHUNK = 1024 * 1024


@dataclass
class LossReport:
    checked: int = 0
    """Accepted uploads looked up (verified, or found lost or corrupt)."""
    unverified: int = 0
    """Accepted uploads that could not be looked up: the target stopped answering."""
    unreachable: str = ""
    """Why the target could not be asked (empty when it answered throughout)."""
    lost: list[str] = field(default_factory=list)
    """Accepted (201) but gone: the API does not know the id, or the file is not on the NAS."""
    corrupt: list[str] = field(default_factory=list)
    """Present, but the checksum or the file's bytes differ from what was sent."""
    nas_checked: bool = False
    method: str = ""

    @property
    def lost_or_corrupt(self) -> int:
        return len(self.lost) + len(self.corrupt)


@dataclass
class CleanupReport:
    deleted: int = 0
    strays_found: int = 0
    """Uploads that got no 201 but were stored anyway (found by checksum), deleted with the rest."""
    failures: list[str] = field(default_factory=list)
    deleted_ids: list[str] = field(default_factory=list)
    stray_checksums: dict[str, str] = field(default_factory=dict)
    """Id -> checksum of the strays (their ledger entries have no id)."""
    absent: list[str] = field(default_factory=list)
    """Checksums of uploads without a 201 that the server does not hold."""
    unreachable: str = ""


def nas_root_or_none(target: Target) -> Path | None:
    try:
        return target.nas_root
    except TargetUnsupported:
        return None


def _file_sha1(path: Path) -> bytes:
    digest = hashlib.sha1()
    with path.open("rb") as f:
        while chunk := f.read(READ_CHUNK):
            digest.update(chunk)
    return digest.digest()


def check_nothing_lost(client: ImmichClient, target: Target, created: list[UploadRecord],
                       progress: Callable[[str], None] = print) -> tuple[LossReport, list[str]]:
    """Returns the report and the ids found on the server (the ones to delete)."""
    nas = nas_root_or_none(target) is not None
    report = LossReport(nas_checked=nas, method=(
        "API checksum and the file on the NAS (present, SHA-1 of the bytes sent)" if nas else
        "API only: Immich's checksum equals the SHA-1 of the bytes sent (no NAS path, files not read)"))
    present: list[str] = []
    for index, record in enumerate(created, 1):
        assert record.asset_id is not None
        expected = record.image.sha1()
        try:
            response = client.asset(record.asset_id)
        except httpx.TransportError as exc:
            report.unreachable = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            report.unverified = len(created) - index + 1
            break
        report.checked += 1
        if response.status_code != 200:
            report.lost.append(f"{record.asset_id}: GET /api/assets/{{id}} answered {response.status_code}")
            continue
        present.append(record.asset_id)
        info = json_or_empty(response)
        if info.get("checksum") != base64.b64encode(expected).decode():
            report.corrupt.append(f"{record.asset_id}: checksum {info.get('checksum')!r} is not the bytes sent")
            continue
        if nas:
            try:
                path = target.nas_path(str(info.get("originalPath", "")))
            except (ValueError, AssertionError):
                report.lost.append(f"{record.asset_id}: originalPath {info.get('originalPath')!r} is outside "
                                   f"the media location {target.media_location}")
                continue
            if not path.is_file():
                report.lost.append(f"{record.asset_id}: no file at {path}")
            elif _file_sha1(path) != expected:
                report.corrupt.append(f"{record.asset_id}: {path} does not hold the bytes sent")
        if index % 500 == 0:
            progress(f"  checked {index} of {len(created)} assets")
    return report, present


def clean_up(client: ImmichClient, present: list[str], unconfirmed: list[UploadRecord]) -> CleanupReport:
    report = CleanupReport()
    try:
        _clean_up(client, present, unconfirmed, report)
    except httpx.TransportError as exc:
        report.unreachable = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        report.failures.append(f"the target stopped answering ({report.unreachable})")
    return report


def _clean_up(client: ImmichClient, present: list[str], unconfirmed: list[UploadRecord], report: CleanupReport) -> None:
    strays: list[str] = []
    for start in range(0, len(unconfirmed), CHECK_BATCH):
        batch = unconfirmed[start:start + CHECK_BATCH]
        response = client.bulk_upload_check({str(i): r.image.sha1_base64() for i, r in enumerate(batch)})
        if response.status_code != 200:
            report.failures.append(f"bulk-upload-check answered {response.status_code}: {response.text[:200]}")
            continue
        for result in json_or_empty(response).get("results", []):
            if result.get("action") == "reject" and result.get("assetId"):
                strays.append(result["assetId"])
                report.stray_checksums[result["assetId"]] = batch[int(result["id"])].image.sha1_base64()
            else:
                report.absent.append(batch[int(result["id"])].image.sha1_base64())
    report.strays_found = len(strays)
    ids = sorted(set(present) | set(strays))
    for start in range(0, len(ids), DELETE_BATCH):
        batch = ids[start:start + DELETE_BATCH]
        response = client.delete_assets(batch, force=True)
        if response.status_code == 204:
            report.deleted += len(batch)
            report.deleted_ids.extend(batch)
        else:
            report.failures.append(f"DELETE /api/assets of {len(batch)} assets answered {response.status_code}: "
                                   f"{response.text[:200]}")
