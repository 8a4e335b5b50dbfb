"""Immich's start-up guard for its media folders ("System Integrity" folder checks) and for a moved media location.

For each folder, in Immich's order: a folder not yet remembered gets its hidden ``.immich`` file created (the folder
too); then every folder's ``.immich`` is read and overwritten. Any failure stops the server with Immich's message.
Folders that passed are remembered in the database (``system-flags`` -> ``mountChecks``), so a remembered folder whose
``.immich`` is gone (an unmounted NAS, an empty directory in its place) stops the server before anything is written.

Then the media location: if the one stored in the database differs from the current one, stored file paths must start
with the stored one (they are then moved over to the current one), else "inconsistent media location" stops the server.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from immich_conformance.double import system_metadata
from immich_conformance.double.database import BOOTSTRAP_LOCK, Database

MEDIA_FOLDERS = ("encoded-video", "library", "upload", "profile", "thumbs", "backups")
MARKER = ".immich"
DOCS = "Please see https://immich.app/docs/administration/system-integrity#folder-checks for more information."
INCONSISTENT_MEDIA_LOCATION = (
    "Detected an inconsistent media location. For more information, see "
    "https://docs.immich.app/errors#inconsistent-media-location"
)

log = logging.getLogger("immich.StorageService")


class StartupError(RuntimeError):
    """The server must not start (Immich's ImmichStartupError)."""

    context = "StorageService"  # the service that logs it


def _external(folder: str) -> str:
    return f"<UPLOAD_LOCATION>/{folder}/{MARKER}"


def _stamp() -> bytes:
    return str(int(time.time() * 1000)).encode()


def create_marker(media: Path, folder: str) -> None:
    folder_path = media / folder
    marker = folder_path / MARKER
    try:
        folder_path.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            log.warning("Found existing mount file, skipping creation")
            return
        try:
            os.write(fd, _stamp())
        finally:
            os.close(fd)
    except OSError as exc:
        log.error("Failed to create %s: %s", marker, exc)
        raise StartupError(f'Failed to create "{_external(folder)} - {DOCS}"') from None


def verify_read(media: Path, folder: str) -> None:
    marker = media / folder / MARKER
    try:
        marker.read_bytes()
    except OSError as exc:
        log.error("Failed to read (%s): %s", marker, exc)
        raise StartupError(f'Failed to read: "{_external(folder)} ({marker}) - {DOCS}"') from None


def verify_write(media: Path, folder: str) -> None:
    marker = media / folder / MARKER
    try:
        marker.write_bytes(_stamp())
    except OSError as exc:
        log.error("Failed to write %s: %s", marker, exc)
        raise StartupError(f'Failed to write "{_external(folder)} - {DOCS}"') from None


def check_folders(media: Path, mount_checks: dict[str, bool]) -> bool:
    """Run the folder checks; mark passed folders in ``mount_checks``; True when it changed."""
    updated = False
    for folder in MEDIA_FOLDERS:
        if not mount_checks.get(folder):
            log.info("Writing initial mount file for the %s folder", folder)
            create_marker(media, folder)
        verify_read(media, folder)
        verify_write(media, folder)
        if not mount_checks.get(folder):
            mount_checks[folder] = True
            updated = True
    return updated


async def verify_storage(db: Database, media: Path, *, ignore_mount_check_errors: bool) -> None:
    async with db.locked(BOOTSTRAP_LOCK):
        flags = await system_metadata.get(db, system_metadata.SYSTEM_FLAGS) or {"mountChecks": {}}
        flags.setdefault("mountChecks", {})
        log.info("Verifying system mount folder checks, current state: %s", _json(flags))
        try:
            if check_folders(media, flags["mountChecks"]):
                await system_metadata.put(db, system_metadata.SYSTEM_FLAGS, flags)
                log.info("Successfully enabled system mount folders checks")
            log.info("Successfully verified system mount folder checks")
        except StartupError as exc:
            if not ignore_mount_check_errors:
                raise
            log.error("%s", exc)
            log.warning("Ignoring mount folder errors")

        await _check_media_location(db, str(media))


async def _check_media_location(db: Database, current: str) -> None:
    sample = await db.fetchone("SELECT original_path FROM assets LIMIT 1")
    saved = await system_metadata.get(db, system_metadata.MEDIA_LOCATION)
    saved_location = (saved or {}).get("location") or ""
    if sample is not None:
        path: str = sample["original_path"]
        previous = saved_location or current  # IMMICH_MEDIA_LOCATION is always set for the double
        if previous != current:
            log.info("Media location changed (from=%s, to=%s)", previous, current)
            if not path.startswith(previous):
                raise StartupError(INCONSISTENT_MEDIA_LOCATION)
            log.warning("Detected a change to media location, performing an automatic migration of file paths "
                        "from %s to %s, this may take awhile", previous, current)
            await db.execute(
                "UPDATE assets SET original_path = %s || substr(original_path, %s) "
                "WHERE starts_with(original_path, %s)",
                (current, len(previous) + 1, previous),
            )
    if saved_location != current:
        await system_metadata.put(db, system_metadata.MEDIA_LOCATION, {"location": current})


def _json(value: object) -> str:
    import json

    return json.dumps(value, separators=(",", ":"))
