"""The documented psql restore's input: the dump unzipped, the search path kept as Immich's documentation's ``sed``
keeps it, and the database chosen by the dump's kind (a whole-server dump connects to its own database; a dump of one
database goes into the stack's); psql's errors counted and quoted."""

from __future__ import annotations

import gzip
from pathlib import Path

from immich_conformance.backups.psql_restore import SEARCH_PATH_KEPT, PsqlRestore, psql_errors

CLEARED = "SELECT pg_catalog.set_config('search_path', '', false);"


def _backup(tmp_path: Path, sql: str) -> Path:
    path = tmp_path / "immich-db-backup-20260101T020000-v2.4.1-pg14.17.sql.gz"
    path.write_bytes(gzip.compress(sql.encode()))
    return path


def test_a_dump_of_one_database_goes_into_the_stacks_database(tmp_path: Path) -> None:
    restore = PsqlRestore.of(_backup(tmp_path, f"SET statement_timeout = 0;\n{CLEARED}\nCREATE TABLE a (id int);\n"))
    assert restore.database is None
    assert CLEARED not in restore.sql and restore.sql.count(SEARCH_PATH_KEPT) == 1
    assert "CREATE TABLE a (id int);" in restore.sql


def test_a_whole_server_dump_goes_into_the_postgres_database(tmp_path: Path) -> None:
    sql = (f"DROP DATABASE IF EXISTS immich;\nCREATE DATABASE immich;\n\\connect immich\n{CLEARED}\n"
           f"CREATE TABLE a (id int);\n\\connect postgres\n{CLEARED}\n")
    restore = PsqlRestore.of(_backup(tmp_path, sql))
    assert restore.database == "postgres"
    assert CLEARED not in restore.sql and restore.sql.count(SEARCH_PATH_KEPT) == 2


def test_psql_errors_are_counted_and_the_first_quoted() -> None:
    assert psql_errors("") == ""
    assert psql_errors("NOTICE:  table \"a\" does not exist, skipping\n") == ""
    stderr = ("psql:/tmp/x.sql:12: ERROR:  current user cannot be dropped\n"
              "psql:/tmp/x.sql:13: ERROR:  role \"postgres\" already exists\n")
    said = psql_errors(stderr)
    assert said.startswith("psql reported 2 error(s)") and "current user cannot be dropped" in said
