"""Upload bodies: unique, valid JPEG bytes of any size, streamed as Immich's multipart form with an exact length.

Each image is a real baseline JPEG (1x1 pixel) padded with comment (COM) segments; its first comment carries a random
nonce, so bytes are unique per call and the SHA-1 is known before a byte is sent. Large bodies are generated as they
are sent, never held whole in memory.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

# A 1x1 baseline JPEG without its SOI marker (FF D8): JFIF header, tables, frame, scan, EOI.
_JPEG_TAIL = base64.b64decode(
    "/+AAEEpGSUYAAQEBAEgASAAA/9sAQwADAgICAgIDAgICAwMDAwQGBAQEBAQIBgYFBgkICgoJCAkJCgwPDAoLDgsJCQ0RDQ4PEBAREAoMEhMSEBMP"
    "EBAQ/8AACwgAAQABAQERAP/EABQAAQAAAAAAAAAAAAAAAAAAAAn/xAAUEAEAAAAAAAAAAAAAAAAAAAAA/9oACAEBAAA/AFTf/9k="
)
_SOI = b"\xff\xd8"
_COM_MAX = 65533  # payload bytes per COM segment (segment length field counts itself: 65535)
_PAD_BLOCK = bytes(range(256)) * 256
MIN_PHOTO_BYTES = len(_SOI) + 4 + 32 + len(_JPEG_TAIL)


@dataclass(frozen=True)
class PhotoSpec:
    """A JPEG of exactly ``size`` bytes whose content depends on ``nonce``."""

    size: int
    nonce: bytes

    @classmethod
    def unique(cls, size: int = 4096) -> PhotoSpec:
        if size < MIN_PHOTO_BYTES:
            raise ValueError(f"a JPEG here needs at least {MIN_PHOTO_BYTES} bytes, not {size}")
        return cls(size=size, nonce=secrets.token_bytes(32))

    def chunks(self) -> Iterator[bytes]:
        yield _SOI
        padding = self.size - len(_SOI) - len(_JPEG_TAIL)
        first = True
        while padding > 0:
            payload_len = min(_COM_MAX, padding - 4)
            if padding - (payload_len + 4) in range(1, 5 + 32):
                payload_len -= 40  # leave room for one more whole segment
            seg = b"\xff\xfe" + (payload_len + 2).to_bytes(2, "big")
            if first:
                body = self.nonce + _PAD_BLOCK[: payload_len - len(self.nonce)]
                first = False
            else:
                body = _PAD_BLOCK[:payload_len]
            yield seg + body
            padding -= payload_len + 4
        yield _JPEG_TAIL

    def content(self) -> bytes:
        return b"".join(self.chunks())

    def sha1(self) -> bytes:
        digest = hashlib.sha1()
        for chunk in self.chunks():
            digest.update(chunk)
        return digest.digest()

    def sha1_base64(self) -> str:
        return base64.b64encode(self.sha1()).decode()


@dataclass
class MultipartUpload:
    """``POST /api/assets`` as Immich's clients send it: ``assetData`` plus the required date fields."""

    image: PhotoSpec
    filename: str
    boundary: str

    @classmethod
    def for_photo(cls, image: PhotoSpec, filename: str | None = None) -> MultipartUpload:
        return cls(image, filename or f"conformance-{uuid.uuid4().hex[:12]}.jpg", f"----conformance{uuid.uuid4().hex}")

    @classmethod
    def with_total_size(cls, total: int, filename: str | None = None) -> MultipartUpload:
        """An upload whose whole multipart body is exactly ``total`` bytes."""
        probe = cls.for_photo(PhotoSpec.unique(MIN_PHOTO_BYTES), filename)
        overhead = probe.content_length - MIN_PHOTO_BYTES
        return cls(PhotoSpec.unique(total - overhead), probe.filename, probe.boundary)

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def _fields(self) -> bytes:
        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")
        out = b""
        for name, value in (("fileCreatedAt", now), ("fileModifiedAt", now)):
            out += (f"--{self.boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").encode()
        return out

    def _file_head(self) -> bytes:
        return (
            f"--{self.boundary}\r\nContent-Disposition: form-data; name=\"assetData\"; filename=\"{self.filename}\"\r\n"
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()

    def _tail(self) -> bytes:
        return f"\r\n--{self.boundary}--\r\n".encode()

    @property
    def content_length(self) -> int:
        return len(self._fields()) + len(self._file_head()) + self.image.size + len(self._tail())

    def chunks(self) -> Iterator[bytes]:
        yield self._fields() + self._file_head()
        yield from self.image.chunks()
        yield self._tail()

    def headers(self) -> dict[str, str]:
        return {"Content-Type": self.content_type, "Content-Length": str(self.content_length)}
