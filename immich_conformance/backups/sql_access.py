"""A release's database reached either by a DSN (psycopg) or through ``psql`` in its database container (the
containers runtime's ``docker exec``, a cluster's ``kubectl exec``): the same ``execute(sql, params)`` for both, so
that ``sample_originals`` and ``grant_api_key`` work wherever the release runs."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import psycopg
from psycopg import sql

PSQL_SCRIPT = ('PGPASSWORD="$POSTGRES_PASSWORD" exec psql -h 127.0.0.1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" '
               '-X -q -v ON_ERROR_STOP=1 --csv -t -c "$1"')
"""Run in the database container as ``sh -c PSQL_SCRIPT sh SQL``: the stack's POSTGRES_* variables say who and
where; rows come back as CSV without a header."""
PSQL_FILE_SCRIPT = ('PGPASSWORD="$POSTGRES_PASSWORD" exec psql -h 127.0.0.1 -U "$POSTGRES_USER" '
                    '-d "${1:-$POSTGRES_DB}" -X -q -o /dev/null -f "$2"')
"""Run in the database container as ``sh -c PSQL_FILE_SCRIPT sh DATABASE FILE``: a whole SQL file (``-`` for
standard input) into DATABASE (empty: the stack's own), going on after errors as plain psql does; errors on stderr."""


class Rows(Protocol):
    def fetchall(self) -> list[tuple[Any, ...]]: ...
    def fetchone(self) -> tuple[Any, ...] | None: ...


class Connection(Protocol):
    def execute(self, query: str, params: Sequence[Any] | None = None) -> Rows: ...
    def __enter__(self) -> Connection: ...
    def __exit__(self, *exc: object) -> None: ...


class _Rows:
    def __init__(self, rows: list[tuple[str, ...]]) -> None:
        self._rows = rows

    def fetchall(self) -> list[tuple[str, ...]]:
        return list(self._rows)

    def fetchone(self) -> tuple[str, ...] | None:
        return self._rows[0] if self._rows else None


class PsqlConnection:
    """Statements sent one by one to ``run`` (SQL in, psql's CSV out); parameters are quoted here, as literals.
    Every value comes back as text (``t``/``f`` for booleans)."""

    def __init__(self, run: Callable[[str], str]) -> None:
        self._run = run

    def execute(self, query: str, params: Sequence[Any] | None = None) -> _Rows:
        if params:
            literal = sql.SQL(query.replace("{", "{{").replace("}", "}}").replace("%s", "{}"))
            query = literal.format(*(sql.Literal(p) for p in params)).as_string(None)
        out = self._run(query)
        return _Rows([tuple(row) for row in csv.reader(io.StringIO(out)) if row])

    def __enter__(self) -> PsqlConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def connect(database: str | Connection) -> Connection:
    """A connection to ``database``: a DSN (autocommit) or a connection already made (e.g. ``PsqlConnection``)."""
    if isinstance(database, str):
        return psycopg.connect(database, autocommit=True)  # type: ignore[return-value]
    return database
