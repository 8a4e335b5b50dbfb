"""What a server start does when the release changes: Immich records each release it has run in ``version_history``
and logs the upgrade. A deliberately broken build (IMMICH_DOUBLE_FAULT=drop-one-asset-on-upgrade) silently deletes
one asset during that step: the fault the pre-upgrade gate exists to catch, kept here so the gate can be tested.
"""

from __future__ import annotations

import logging

from immich_conformance.double.database import Database
from immich_conformance.double.settings import FAULTS, ServerVersion

log = logging.getLogger("immich.VersionService")

FAULT_DROP_ONE_ASSET = FAULTS[0]

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
        if fault == FAULT_DROP_ONE_ASSET:
            await db.execute(
                "DELETE FROM assets WHERE id = (SELECT id FROM assets ORDER BY created_at, id LIMIT 1)"
            )
    await db.execute("INSERT INTO version_history (version) VALUES (%s)", (str(version),))
