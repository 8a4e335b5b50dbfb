"""A backup restored the way Immich's documentation restores one into a release without the restore flow (before
v2.5): the server stopped, the SQL fed to ``psql`` in the database container, the server started again.

The documentation's command is ``gunzip --stdout BACKUP | sed "s/SELECT pg_catalog.set_config('search_path', '',
false);/SELECT pg_catalog.set_config('search_path', 'public, pg_catalog', true);/g" | psql --dbname=postgres``:
the ``sed`` keeps the search path that Immich's functions need while the dump loads. A dump of the whole server
(``pg_dumpall``, as Immich wrote them for years) connects to its own database (``\\connect immich``), so it is fed to
the ``postgres`` database; a dump of one database (``pg_dump``) goes into the stack's database itself.

Whether a release has the restore flow is asked of the release: ``GET /api/admin/maintenance/status`` is unknown
(404) before v2.5.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from pathlib import Path

import httpx

SEARCH_PATH_CLEARED = "SELECT pg_catalog.set_config('search_path', '', false);"
SEARCH_PATH_KEPT = "SELECT pg_catalog.set_config('search_path', 'public, pg_catalog', true);"
CONNECTS = re.compile(r"^\\connect\b", re.MULTILINE)
SHOWN_ERRORS = 3


@dataclass(frozen=True)
class PsqlRestore:
    """The SQL to feed to psql, and the database to feed it to (None: the stack's own, ``$POSTGRES_DB``)."""

    sql: str
    database: str | None

    @classmethod
    def of(cls, backup: Path) -> PsqlRestore:
        with gzip.open(backup, "rt", encoding="utf-8") as f:
            sql = f.read()
        return cls(sql.replace(SEARCH_PATH_CLEARED, SEARCH_PATH_KEPT),
                   "postgres" if CONNECTS.search(sql) else None)


def has_restore_flow(client: httpx.Client) -> bool:
    """Whether the release behind ``client`` restores backups itself (Immich v2.5 and later)."""
    return client.get("/api/admin/maintenance/status").status_code != 404


def psql_errors(stderr: str) -> str:
    """psql's ERROR lines, counted, the first few quoted; empty when there were none. psql goes on after an error, as
    the documentation's command does (a whole-server dump meets roles and databases that exist already)."""
    errors = [line.strip() for line in stderr.splitlines() if "ERROR:" in line]
    if not errors:
        return ""
    return f"psql reported {len(errors)} error(s), the first: " + " | ".join(errors[:SHOWN_ERRORS])
