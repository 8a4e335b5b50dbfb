"""What a server start does when the release changes: Immich records each release it has run in ``version_history``
and logs the upgrade. Deliberately broken builds, kept here so that the pre-upgrade gate can be tested:
IMMICH_DOUBLE_FAULT=drop-one-asset-on-upgrade silently deletes one asset during that step (the fault the gate exists
to catch); fail-migration-on-upgrade fails that step, so the server exits at every start after an upgrade (a crash
loop, as when a real migration fails); log-migration-error-on-upgrade logs a failed migration the way Immich's
DatabaseRepository does (a WARN naming the migration, an ERROR "Kysely migrations failed: ...") at the first start
after an upgrade and serves on: an upgrade that only looks healthy; drop-album-members-on-upgrade removes every
member (a user it is shared with; the owner stays) of the first album that has any during that step, as a faulty
migration of the album tables would.
"""

from __future__ import annotations

import logging

from immich_conformance.double.database import Database
from immich_conformance.double.settings import FAULTS, ServerVersion
from immich_conformance.double.storage_integrity import StartupError

log = logging.getLogger("immich.VersionService")
migration_log = logging.getLogger("immich.Microservices:DatabaseRepository")

FAULT_DROP_ONE_ASSET, FAULT_FAIL_MIGRATION, FAULT_LOG_MIGRATION_ERROR, FAULT_DROP_ALBUM_MEMBERS = FAULTS
BROKEN_MIGRATION = "1764806400000-ReleaseSchemaChange"


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
        if fault == FAULT_LOG_MIGRATION_ERROR:
            migration_log.warning('Migration "%s" failed', BROKEN_MIGRATION)
            migration_log.error('Kysely migrations failed: error: column "visibility" of relation "asset" already '
                                'exists')
        if fault == FAULT_DROP_ONE_ASSET:
            await db.execute(
                "DELETE FROM assets WHERE id = (SELECT id FROM assets ORDER BY created_at, id LIMIT 1)"
            )
        if fault == FAULT_DROP_ALBUM_MEMBERS:
            await db.execute(
                "DELETE FROM album_users WHERE role <> 'owner' AND album_id = (SELECT album_id FROM album_users "
                "WHERE role <> 'owner' ORDER BY created_at, album_id LIMIT 1)"
            )
    await db.execute("INSERT INTO version_history (version) VALUES (%s)", (str(version),))
