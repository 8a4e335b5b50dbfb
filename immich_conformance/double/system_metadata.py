"""Keys of the server's own bookkeeping, stored as JSON values (Immich's ``system_metadata`` table)."""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from immich_conformance.double.database import Database

SYSTEM_FLAGS = "system-flags"  # {"mountChecks": {"upload": true, ...}}
MEDIA_LOCATION = "MediaLocation"  # {"location": "/data"}
ADMIN_ONBOARDING = "admin-onboarding"  # {"isOnboarded": bool}


async def get(db: Database, key: str) -> Any:
    row = await db.fetchone("SELECT value FROM system_metadata WHERE key = %s", (key,))
    return row["value"] if row else None


async def put(db: Database, key: str, value: Any) -> None:
    await db.execute(
        "INSERT INTO system_metadata (key, value) VALUES (%s, %s) "
        "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        (key, Jsonb(value)),
    )
