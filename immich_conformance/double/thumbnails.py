"""Whether Immich's thumbnail job would succeed for an upload, which decides whether ``on_upload_success`` is sent.

Immich sends ``on_upload_success`` once the thumbnails of a new asset are made (~0.35 s after the upload on an idle
server), never for a hidden asset, and never when the file cannot be decoded (the job fails). The double makes no
thumbnails; it checks the file's structure instead: a JPEG's markers up to its scan and its end marker, a PNG's chunks
and their CRCs, GIF and WebP headers, and an ISO media file's ``ftyp`` and ``moov`` boxes (a video without ``moov``
has nothing ffmpeg can read). Any other kind is taken as undecodable: the double never announces what Immich might
not.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import BinaryIO

THUMBNAIL_SECONDS = 0.35
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_FRAMES = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_JPEG_NO_LENGTH = {0x01, *range(0xD0, 0xD8)}
_MAX_PNG_CHUNK = 64 * 1024 * 1024


def _jpeg(f: BinaryIO, size: int) -> bool:
    if f.read(2) != b"\xff\xd8":
        return False
    framed = False
    while True:
        head = f.read(2)
        if len(head) < 2 or head[0] != 0xFF:
            return False
        marker = head[1]
        if marker in _JPEG_NO_LENGTH or marker == 0xFF:
            continue
        raw = f.read(2)
        if len(raw) < 2:
            return False
        length = struct.unpack(">H", raw)[0]
        if length < 2:
            return False
        if marker in _JPEG_FRAMES:
            framed = True
        if marker == 0xDA:  # start of scan: the image data follows up to the end marker
            if not framed:
                return False
            f.seek(max(size - 2, 0))
            return f.read(2) == b"\xff\xd9"
        f.seek(length - 2, 1)


def _png(f: BinaryIO) -> bool:
    if f.read(8) != PNG_SIGNATURE:
        return False
    first = True
    data = zlib.decompressobj()
    while True:
        head = f.read(8)
        if len(head) < 8:
            return False
        length, kind = struct.unpack(">I4s", head)
        if length > _MAX_PNG_CHUNK or (first and kind != b"IHDR"):
            return False
        first = False
        body = f.read(length)
        crc = f.read(4)
        if len(body) < length or len(crc) < 4 or struct.unpack(">I", crc)[0] != zlib.crc32(kind + body) & 0xFFFFFFFF:
            return False
        if kind == b"IDAT":
            try:
                data.decompress(body, 0)
            except zlib.error:
                return False
        if kind == b"IEND":
            return data.eof


def _iso_media(f: BinaryIO, size: int) -> bool:
    seen: set[bytes] = set()
    position = 0
    while position + 8 <= size:
        f.seek(position)
        length, kind = struct.unpack(">I4s", f.read(8))
        if length == 1:
            length = struct.unpack(">Q", f.read(8))[0]
        elif length == 0:
            length = size - position
        if length < 8:
            return False
        seen.add(kind)
        position += length
    return position == size and b"ftyp" in seen and b"moov" in seen


def decodable(path: Path) -> bool:
    """Whether the file at ``path`` is an image or video the thumbnail job could read (see the module's note)."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            start = f.read(12)
            f.seek(0)
            if start.startswith(b"\xff\xd8"):
                return _jpeg(f, size)
            if start.startswith(PNG_SIGNATURE):
                return _png(f)
            if start[:6] in (b"GIF87a", b"GIF89a"):
                f.seek(max(size - 1, 0))
                return f.read(1) == b";"
            if start[:4] == b"RIFF" and start[8:12] == b"WEBP":
                return struct.unpack("<I", start[4:8])[0] + 8 == size
            if start[4:8] == b"ftyp":
                return _iso_media(f, size)
    except (OSError, struct.error):
        return False
    return False
