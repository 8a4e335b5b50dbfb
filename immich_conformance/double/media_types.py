"""Which file names Immich accepts as assets, and the asset type and MIME type it gives them (by extension)."""

from __future__ import annotations

from pathlib import PurePosixPath

IMAGE_TYPES: dict[str, str] = {
    ".3fr": "image/3fr", ".ari": "image/ari", ".arw": "image/arw", ".avif": "image/avif", ".bmp": "image/bmp",
    ".cap": "image/cap", ".cin": "image/cin", ".cr2": "image/cr2", ".cr3": "image/cr3", ".crw": "image/crw",
    ".dcr": "image/dcr", ".dng": "image/dng", ".erf": "image/erf", ".fff": "image/fff", ".gif": "image/gif",
    ".heic": "image/heic", ".heif": "image/heif", ".hif": "image/hif", ".iiq": "image/iiq", ".insp": "image/jpeg",
    ".jp2": "image/jp2", ".jpe": "image/jpeg", ".jpeg": "image/jpeg", ".jpg": "image/jpeg", ".jxl": "image/jxl",
    ".k25": "image/k25", ".kdc": "image/kdc", ".mrw": "image/mrw", ".nef": "image/nef", ".nrw": "image/nrw",
    ".orf": "image/orf", ".ori": "image/ori", ".pef": "image/pef", ".png": "image/png", ".psd": "image/psd",
    ".raf": "image/raf", ".raw": "image/raw", ".rw2": "image/rw2", ".rwl": "image/rwl", ".sr2": "image/sr2",
    ".srf": "image/srf", ".srw": "image/srw", ".svg": "image/svg", ".tif": "image/tiff", ".tiff": "image/tiff",
    ".webp": "image/webp", ".x3f": "image/x3f",
}

VIDEO_TYPES: dict[str, str] = {
    ".3gp": "video/3gpp", ".3gpp": "video/3gpp", ".avi": "video/avi", ".flv": "video/x-flv", ".insv": "video/mp4",
    ".m2t": "video/mp2t", ".m2ts": "video/mp2t", ".m4v": "video/x-m4v", ".mkv": "video/x-matroska",
    ".mov": "video/quicktime", ".mp4": "video/mp4", ".mpe": "video/mpeg", ".mpeg": "video/mpeg", ".mpg": "video/mpeg",
    ".mts": "video/mp2t", ".mxf": "application/mxf", ".vob": "video/mpeg", ".webm": "video/webm",
    ".wmv": "video/x-ms-wmv",
}

SIDECAR_TYPES: dict[str, str] = {".xmp": "application/xml"}


def extension(filename: str) -> str:
    """What Node's ``path.extname`` gives: the last dot-suffix of the base name, case kept ("" for ".bashrc")."""
    name = PurePosixPath(filename.replace("\\", "/")).name
    dot = name.rfind(".")
    return name[dot:] if dot > 0 else ""


def is_asset(filename: str) -> bool:
    ext = extension(filename).lower()
    return ext in IMAGE_TYPES or ext in VIDEO_TYPES


def is_sidecar(filename: str) -> bool:
    return extension(filename).lower() in SIDECAR_TYPES


def asset_type(filename: str) -> str:
    ext = extension(filename).lower()
    if ext in IMAGE_TYPES:
        return "IMAGE"
    if ext in VIDEO_TYPES:
        return "VIDEO"
    return "OTHER"


def mime_type(filename: str) -> str:
    ext = extension(filename).lower()
    return IMAGE_TYPES.get(ext) or VIDEO_TYPES.get(ext) or SIDECAR_TYPES.get(ext) or "application/octet-stream"
