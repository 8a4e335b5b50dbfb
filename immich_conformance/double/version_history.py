"""What a server start does when the release changes: Immich records each release it has run in ``version_history``
and logs the upgrade. Two deliberately broken builds, kept here so that the pre-upgrade gate can be tested:
IMMICH_DOUBLE_FAULT=drop-one-asset-on-upgrade silently deletes one asset during that step (the fault the gate exists
to catch); fail-migration-on-upgrade fails that step, so the server exits at every start after an upgrade (a crash
loop, as when a real migration fails).
"""

from __future__ import annotations

import logging

from immich_conformance.double.database import Database
from immich_conformance.double.settings import FAULTS, ServerVersion
from immich_conformance.double.storage_integrity import StartupError

log = logging.getLogger("immich.VersionService")

FAULT_DROP_ONE_ASSET, FAULT_FAIL_MIGRATION = FAULTS


class MigrationFailed(StartupError):
    """The database migration of a new release failed: the server exits."""

    context = "DatabaseService"

SCHEMA = """
CREATE TABLE IF NOT EXISTS version_history (
    id serial PRIMARY KEY,
    version text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
"""


async def record_start(db: Database, version: ServerVersion, fault: str | None) -> None:
    await db.execute(SCHEMA)
    row = await db.fetchone("SELECT version FROM version_history ORDER BY id DESC LIMIT 1")
    previous = row["version"] if row else None
    if previous == str(version):
        return
    if previous is not None:
        log.info("Version has changed: %s -> %s", previous, version)
        if fault == FAULT_FAIL_MIGRATION:
            raise MigrationFailed(f"Migration from {previous} to {version} failed: the database was left as it was")
        if fault == FAULT_DROP_ONE_ASSET:
            await db.execute(
                "DELETE FROM assets WHERE id = (SELECT id FROM assets ORDER BY created_at, id LIMIT 1)"
            )
    await db.execute("INSERT INTO version_history (version) VALUES (%s)", (str(version),))
