"""Receiving ``POST /api/assets`` bodies: multipart streamed to disk chunk by chunk, SHA-1 computed on the way.

The file goes to ``<media>/upload/<userId>/<u[0:2]>/<u[2:4]>/<u><ext>`` with a fresh random UUID ``u`` (not the asset
id), written under that final name while it grows, as Immich's multer storage does. What becomes of it:
- the body is cut mid-way, or multer refuses it (unsupported type, unexpected field): removed at once, with the
  folders the upload made when they are left empty: nothing stays;
- the complete body fails validation (400): left where it is, with no database row (Immich does the same);
- a duplicate: the 200 is sent first, a background job removes the copy afterwards (``remove_later``);
- accepted: kept, the asset's original.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
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
    final_path: Path
    checksum: bytes
    size: int
    made_dirs: list[Path] = field(default_factory=list)
    kept: bool = False  # set once the file is no longer the upload's to remove (an asset's, left behind, or queued)

    def keep(self) -> Path:
        """From now on the file is not removed by ``discard``; its path."""
        self.kept = True
        return self.final_path

    def discard(self) -> None:
        if self.kept:
            return
        with contextlib.suppress(FileNotFoundError):
            self.final_path.unlink()
        prune_empty(self.made_dirs)


async def remove_later(path: Path) -> None:
    """Immich's FileDelete job for a duplicate's received copy: the file only (its folders stay)."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


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
    # mkdir and open happen in one step of the event loop, so another upload's pruning cannot remove the folder
    # in between.
    made = _make_dirs(folder, stop_at=media / "upload")
    received = ReceivedFile(original_name, final_path, b"", 0, made)
    try:
        handle = open(final_path, "xb")  # noqa: SIM115 - closed below, whatever happens
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
    multipart: bool = False

    def discard(self) -> None:
        if self.asset is not None:
            self.asset.discard()


async def read_upload(request: web.Request, media: Path, user_id: str) -> UploadBody:
    """Stream the multipart body; the asset file lands on disk under a temporary name (see ``ReceivedFile``).

    Raises ApiError for what multer refuses (unsupported file type, unexpected file field); on any exception nothing
    received stays on disk.
    """
    body = UploadBody(fields={})
    if request.content_type == "application/json" and request.body_exists:
        try:
            parsed = json.loads(await request.read() or b"{}")
        except ValueError as exc:
            raise ApiError(400, f"Unexpected token in JSON at position {getattr(exc, 'pos', 0)}") from None
        body.fields = parsed if isinstance(parsed, dict) else {}
        return body
    if request.content_type == "application/x-www-form-urlencoded":
        body.fields = dict(await request.post())  # Express' urlencoded parser fills the DTO the same way
        return body
    if not request.content_type.startswith("multipart/"):
        return body  # Immich's multer ignores other bodies: the request then lacks its file
    body.multipart = True
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
