"""``POST /api/jobs`` (admin, ``job.create``): Immich's manual jobs (``ManualJobName``) queued by name, 204.

``backup-database`` queues the ``DatabaseBackup`` job (``backups``); the ``integrity-…`` names queue the integrity
checks (``integrity``). The cleanup and memory jobs are accepted and have nothing to do in the double (it keeps no
people, tags to clean, memories or deleted users due for removal).
"""

from __future__ import annotations

from aiohttp import web

from immich_conformance.double import backups, integrity
from immich_conformance.double.http_api import caller, json_body, state
from immich_conformance.double.validation import Reader

MANUAL_JOBS = (
    "person-cleanup", "tag-cleanup", "user-cleanup", "memory-cleanup", "memory-create", "backup-database",
    "integrity-missing-files", "integrity-untracked-files", "integrity-checksum-mismatch",
    "integrity-missing-files-refresh", "integrity-untracked-files-refresh", "integrity-checksum-mismatch-refresh",
    "integrity-missing-files-delete-all", "integrity-untracked-files-delete-all",
    "integrity-checksum-mismatch-delete-all",
)


def names(request: web.Request) -> tuple[str, ...]:
    """The manual jobs of the running release (the integrity checks' only from the release that has them)."""
    if state(request).settings.version.at_least(integrity.SINCE):
        return MANUAL_JOBS
    return tuple(name for name in MANUAL_JOBS if not name.startswith("integrity-"))


async def create_job(request: web.Request) -> web.Response:
    await caller(request, "job.create", admin=True)
    reader = Reader(await json_body(request))
    known = names(request)
    if "name" not in reader.body:
        reader.issues.invalid_value(["name"], known)
    name = reader.choice("name", known)
    reader.issues.raise_if_any()
    assert name is not None
    if name == "backup-database":
        backups.queue_backup(request)
    else:
        integrity.queue_manual(request, name)
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/jobs", create_job)
