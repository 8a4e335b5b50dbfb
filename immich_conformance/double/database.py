"""The double's metadata in PostgreSQL: a few pooled async connections and the tables, created at start."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import psycopg
from psycopg.rows import dict_row

from immich_conformance.double.library_tables import LIBRARY_SCHEMA

# Held while the tables are created and the media folders are checked, so two servers on one database take turns
# (Immich locks the same steps with advisory locks).
BOOTSTRAP_LOCK = 0x1A1C_0001

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id uuid PRIMARY KEY,
    email text NOT NULL UNIQUE,
    name text NOT NULL,
    password_hash text NOT NULL,
    is_admin boolean NOT NULL DEFAULT false,
    storage_label text,
    quota_usage_bytes bigint NOT NULL DEFAULT 0,
    should_change_password boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    profile_changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS sessions (
    id uuid PRIMARY KEY,
    token_hash bytea NOT NULL UNIQUE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS api_keys (
    id uuid PRIMARY KEY,
    key_hash bytea NOT NULL UNIQUE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name text NOT NULL,
    permissions text[] NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS assets (
    id uuid PRIMARY KEY,
    owner_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    checksum bytea NOT NULL,
    original_path text NOT NULL,
    original_file_name text NOT NULL,
    asset_type text NOT NULL,
    mime_type text NOT NULL,
    file_size bigint NOT NULL,
    file_created_at timestamptz NOT NULL,
    file_modified_at timestamptz NOT NULL,
    local_date_time timestamptz NOT NULL,
    is_favorite boolean NOT NULL DEFAULT false,
    visibility text NOT NULL DEFAULT 'timeline',
    duration integer,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz,
    CONSTRAINT assets_owner_checksum UNIQUE (owner_id, checksum)
);
CREATE TABLE IF NOT EXISTS system_metadata (
    key text PRIMARY KEY,
    value jsonb NOT NULL
);
"""


class DatabaseUnavailable(RuntimeError):
    """The database could not be reached or used at start."""


class Database:
    def __init__(self, conninfo: dict[str, str], *, where: str, size: int = 4) -> None:
        self.conninfo = conninfo
        self.where = where
        self.size = size
        self._idle: asyncio.Queue[psycopg.AsyncConnection[dict[str, Any]]] = asyncio.Queue()
        self._all: list[psycopg.AsyncConnection[dict[str, Any]]] = []

    async def _connect(self) -> psycopg.AsyncConnection[dict[str, Any]]:
        if "conninfo" in self.conninfo:
            return await psycopg.AsyncConnection.connect(
                self.conninfo["conninfo"], autocommit=True, row_factory=dict_row, connect_timeout=3
            )
        return await psycopg.AsyncConnection.connect(autocommit=True, row_factory=dict_row, connect_timeout=3,
                                                     **self.conninfo)

    async def open(self, wait_seconds: float) -> None:
        """Connect (retrying for up to ``wait_seconds`` while the database starts), then create the tables."""
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                first = await self._connect()
                break
            except psycopg.OperationalError as exc:
                if time.monotonic() >= deadline:
                    reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
                    raise DatabaseUnavailable(
                        f"cannot connect to the database at {self.where}: {reason} "
                        "(check DB_HOSTNAME, DB_PORT, DB_USERNAME, DB_PASSWORD, DB_DATABASE_NAME)"
                    ) from None
                await asyncio.sleep(0.2)
        self._add(first)
        for _ in range(self.size - 1):
            self._add(await self._connect())
        await self.migrate()

    async def migrate(self) -> None:
        """Create the tables that are missing (the double's migrations)."""
        async with self.locked(BOOTSTRAP_LOCK), self.connection() as conn:
            await conn.execute(SCHEMA)
            await conn.execute(LIBRARY_SCHEMA)

    async def reopen(self, wait_seconds: float) -> None:
        """Drop every connection and connect again (after a restore terminated them, or a server restart)."""
        await self.close()
        self._idle = asyncio.Queue()
        await self.open(wait_seconds)

    def _add(self, conn: psycopg.AsyncConnection[dict[str, Any]]) -> None:
        self._all.append(conn)
        self._idle.put_nowait(conn)

    async def close(self) -> None:
        for conn in self._all:
            with suppress(psycopg.Error):
                await conn.close()
        self._all.clear()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[dict[str, Any]]]:
        conn = await self._idle.get()
        try:
            if conn.closed:
                conn = await self._replace(conn)
            yield conn
        finally:
            self._idle.put_nowait(conn)

    async def _replace(self, dead: psycopg.AsyncConnection[dict[str, Any]]) -> psycopg.AsyncConnection[dict[str, Any]]:
        fresh = await self._connect()
        if dead in self._all:
            self._all[self._all.index(dead)] = fresh
        else:  # handed back after a reopen replaced the pool
            self._all.append(fresh)
        return fresh

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[psycopg.AsyncConnection[dict[str, Any]]]:
        async with self.connection() as conn, conn.transaction():
            yield conn

    @asynccontextmanager
    async def locked(self, key: int) -> AsyncIterator[None]:
        """A session-level advisory lock, held on one pooled connection for the duration of the block."""
        async with self.connection() as conn:
            await conn.execute("SELECT pg_advisory_lock(%s)", (key,))
            try:
                yield
            finally:
                await conn.execute("SELECT pg_advisory_unlock(%s)", (key,))

    async def fetchone(self, sql: str, params: Any = None) -> dict[str, Any] | None:
        async with self.connection() as conn:
            cur = await conn.execute(sql, params)  # type: ignore[arg-type]
            return await cur.fetchone()

    async def fetchall(self, sql: str, params: Any = None) -> list[dict[str, Any]]:
        async with self.connection() as conn:
            cur = await conn.execute(sql, params)  # type: ignore[arg-type]
            return await cur.fetchall()

    async def execute(self, sql: str, params: Any = None) -> int:
        async with self.connection() as conn:
            cur = await conn.execute(sql, params)  # type: ignore[arg-type]
            return cur.rowcount
