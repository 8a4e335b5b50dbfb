"""Small, valid and unique media files beside ``upload_bodies.PhotoSpec``'s JPEGs: a PNG, an MP4 and a HEIC (one per
call)."""

from __future__ import annotations

import secrets
import struct
import zlib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def unique_png(side: int = 16) -> bytes:
    """An RGB PNG of ``side`` x ``side`` random pixels."""
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    rows = b"".join(b"\x00" + secrets.token_bytes(side * 3) for _ in range(side))
    return (PNG_SIGNATURE + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(rows))
            + _png_chunk(b"IEND", b""))


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def unique_mp4(payload_bytes: int = 32 * 1024) -> bytes:
    """An ISO base media file: an ``ftyp`` box (isom/mp42) and an ``mdat`` box of random bytes."""
    ftyp = _box(b"ftyp", b"isom" + struct.pack(">I", 0x200) + b"isomiso2mp41")
    return ftyp + _box(b"mdat", secrets.token_bytes(payload_bytes))


def unique_heic(payload_bytes: int = 4 * 1024) -> bytes:
    """A HEIF container: an ``ftyp`` box (heic/mif1), a ``meta`` box with its ``pict`` handler, an ``mdat`` of random
    bytes. Immich takes it by its extension; no decoder could draw it (no item boxes), so no thumbnail is promised."""
    ftyp = _box(b"ftyp", b"heic" + struct.pack(">I", 0) + b"mif1heic")
    hdlr = _box(b"hdlr", bytes(4) + bytes(4) + b"pict" + bytes(12) + b"\x00")
    meta = _box(b"meta", bytes(4) + hdlr)
    return ftyp + meta + _box(b"mdat", secrets.token_bytes(payload_bytes))
