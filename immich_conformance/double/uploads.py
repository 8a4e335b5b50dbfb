"""Receiving ``POST /api/assets`` bodies: multipart streamed to disk chunk by chunk, SHA-1 computed on the way.

The file goes to ``<media>/upload/<userId>/<u[0:2]>/<u[2:4]>/<u><ext>`` with a fresh random UUID ``u`` (not the asset
id). It is written under a hidden temporary name in that folder and renamed only when the upload is accepted; on any
failure (client gone mid-body, a refused or invalid request, a duplicate) the temporary file is removed, with the
folders the upload made when they are left empty. So a partial or failed body leaves nothing on disk.

(Immich itself leaves the received file behind when it rejects a complete body with 400; it removes it for a cut
connection. The double removes it in both cases: the contract only demands that a failed body leaves nothing.)
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, MultipartReader, web

from immich_conformance.double import media_types
from immich_conformance.double.validation import ApiError

ASSET_FIELD = "assetData"
SIDECAR_FIELD = "sidecarData"
CHUNK = 256 * 1024
MAX_FIELD_BYTES = 1024 * 1024  # multer's default fieldSize
_UNSAFE = re.compile(r'[/\\?<>:*|"\x00-\x1f\x80-\x9f]')


@dataclass
class ReceivedFile:
    original_name: str
    temp_path: Path
    final_path: Path
    checksum: bytes
    size: int
    made_dirs: list[Path] = field(default_factory=list)
    kept: bool = False  # set once the asset row exists: from then on the file belongs to the asset

    def commit(self) -> Path:
        os.replace(self.temp_path, self.final_path)
        return self.final_path

    def discard(self) -> None:
        if self.kept:
            return
        for path in (self.temp_path, self.final_path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        prune_empty(self.made_dirs)


def prune_empty(dirs: list[Path]) -> None:
    """Remove the given folders, deepest first, where they are empty."""
    for folder in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            folder.rmdir()


def _make_dirs(folder: Path, stop_at: Path) -> list[Path]:
    """mkdir -p, returning the folders that did not exist (only those may be pruned again)."""
    missing = []
    current = folder
    while current != stop_at and not current.exists():
        missing.append(current)
        current = current.parent
    folder.mkdir(parents=True, exist_ok=True)
    return missing


def upload_folder(media: Path, user_id: str, file_uuid: str) -> Path:
    return media / "upload" / user_id / file_uuid[0:2] / file_uuid[2:4]


def safe_name(name: str) -> str:
    return _UNSAFE.sub("", name)[:255]


async def receive_file(part: BodyPartReader, media: Path, user_id: str, original_name: str) -> ReceivedFile:
    file_uuid = str(uuid.uuid4())
    ext = media_types.extension(original_name)
    folder = upload_folder(media, user_id, file_uuid)
    final_path = folder / safe_name(f"{file_uuid}{ext}")
    temp_path = folder / safe_name(f".{file_uuid}{ext}.partial")
    # mkdir and open happen in one step of the event loop, so another upload's pruning cannot remove the folder
    # in between.
    made = _make_dirs(folder, stop_at=media / "upload")
    received = ReceivedFile(original_name, temp_path, final_path, b"", 0, made)
    try:
        handle = open(temp_path, "xb")  # noqa: SIM115 - closed below, whatever happens
    except OSError:
        prune_empty(made)
        raise
    digest = hashlib.sha1()
    size = 0
    try:
        with handle:
            while True:
                chunk = await part.read_chunk(CHUNK)
                if not chunk:
                    break
                digest.update(chunk)
                handle.write(chunk)
                size += len(chunk)
    except BaseException:
        received.discard()
        raise
    received.checksum = digest.digest()
    received.size = size
    return received


async def read_field(part: BodyPartReader) -> str:
    data = bytearray()
    while True:
        chunk = await part.read_chunk(CHUNK)
        if not chunk:
            break
        data += chunk
        if len(data) > MAX_FIELD_BYTES:
            raise ApiError(400, "Field value too long")
    return data.decode(part.get_charset("utf-8"), errors="replace")


@dataclass
class UploadBody:
    fields: dict[str, Any]
    asset: ReceivedFile | None = None

    def discard(self) -> None:
        if self.asset is not None:
            self.asset.discard()


async def read_upload(request: web.Request, media: Path, user_id: str) -> UploadBody:
    """Stream the multipart body; the asset file lands on disk under a temporary name (see ``ReceivedFile``).

    Raises ApiError for what multer refuses (unsupported file type, unexpected file field); on any exception nothing
    received stays on disk.
    """
    body = UploadBody(fields={})
    if not request.content_type.startswith("multipart/"):
        return body  # Immich's multer ignores other bodies: the request then lacks its file
    try:
        reader = await request.multipart()
    except (ValueError, AssertionError):
        raise ApiError(400, "Multipart: Boundary not found") from None
    try:
        while True:
            part = await reader.next()
            if part is None:
                break
            if isinstance(part, MultipartReader):
                raise ApiError(400, "Unexpected field")
            name = part.name or ""
            if part.filename is None:
                body.fields[name] = await read_field(part)
                continue
            if name == ASSET_FIELD:
                if body.asset is not None:
                    raise ApiError(400, "Unexpected field")
                original = body.fields.get("filename") or part.filename
                if not media_types.is_asset(original):
                    raise ApiError(400, f"Unsupported file type {original}")
                body.asset = await receive_file(part, media, user_id, original)
            elif name == SIDECAR_FIELD:
                if not media_types.is_sidecar(body.fields.get("filename") or part.filename):
                    raise ApiError(400, f"Unsupported file type {part.filename}")
                await part.release()  # sidecars are accepted and not kept
            else:
                raise ApiError(400, "Unexpected field")
    except BaseException:
        body.discard()
        raise
    return body
