"""Immich's database restore (``DatabaseBackupService.restoreDatabaseBackup``, v3.0.3), run by the maintenance worker.

Steps and the progress they report: ``backup`` 0.05 (a ``restore-point-…`` backup of the current database), then
``restore`` (a fraction: lines psql has echoed over lines sent) while psql replays, in one transaction that stops at
the first error, the other connections dropped, the ``public`` schema re-created and the backup's SQL (gunzipped when
``.gz``; ``OWNER TO`` rewritten to the server's database user); then ``migrations`` 0.9: the schema brought up to date,
an admin required ("Server health check failed, no admin exists.") and the API's start-up run on the restored
database ("Server health check failed, server exited with 1"). A failure after psql's commit replays the restore point
(``rollback``). Any failure is raised with Immich's wording for the maintenance status.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import re
import subprocess
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

from immich_conformance.double import backups
from immich_conformance.double.database import Database
from immich_conformance.double.settings import Settings
from immich_conformance.double.storage_integrity import StartupError, verify_storage
from immich_conformance.double.version_history import record_start

log = logging.getLogger("immich.DatabaseBackupService")

Progress = Callable[[str, float], None]
PROGRESS_SECONDS = 0.1  # Immich debounces its progress reports to 100 ms

SQL_DROP_CONNECTIONS = """
  -- drop all other database connections
  SELECT pg_terminate_backend(pid)
  FROM pg_stat_activity
  WHERE datname = current_database()
    AND pid <> pg_backend_pid();
"""


def sql_reset_schema(username: str) -> str:
    return f"""
  -- re-create the default schema
  DROP SCHEMA public CASCADE;
  CREATE SCHEMA public;

  -- restore access to schema
  GRANT ALL ON SCHEMA public TO "{username}";
  GRANT ALL ON SCHEMA public TO public;
"""


class RestoreError(RuntimeError):
    """The restore failed; the message is what Immich puts in the maintenance status's ``error``."""


def is_cluster_dump(filename: str) -> bool:
    """Backups of Immich <= 2.4 were ``pg_dumpall`` dumps (``-v<version>-`` in the name)."""
    found = re.search(r"-v(.*)-", filename)
    numbers = re.match(r"(\d+)\.(\d+)", found.group(1)) if found else None
    return bool(numbers) and (int(numbers.group(1)), int(numbers.group(2))) <= (2, 4)  # type: ignore[union-attr]


def _backup_lines(path: Path, username: str) -> Iterator[bytes]:
    """The backup's SQL, ``OWNER TO <x>;`` made the server's user until the first ``FROM stdin`` (data follows)."""
    opener = gzip.open if path.name.endswith(".gz") else open
    owner = re.compile(rb"OWNER TO [^;]*;")
    in_data = False
    with opener(path, "rb") as stream:  # type: ignore[operator]
        for line in stream:
            if not in_data:
                line = owner.sub(b"OWNER TO " + username.encode() + b";", line)
                in_data = b"FROM stdin" in line
            yield line


def _replay(argv: list[str], env: dict[str, str], chunks: Iterator[bytes], report: Callable[[float], None]) -> None:
    """Feed ``chunks`` to psql; its echoed lines over the lines sent (COPY data left out, psql does not echo it)
    give the progress, at most every ``PROGRESS_SECONDS``. Raises with Immich's wording on a failure."""
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    sent = processed = 0
    done_sending = False
    last_report = 0.0
    stderr: list[bytes] = []

    def progress(final: bool = False) -> None:
        nonlocal last_report
        now = time.monotonic()
        if final or now - last_report >= PROGRESS_SECONDS:
            last_report = now
            # While sending, Immich shows a simulated 10-30 %; once all is sent, processed over sent.
            report(min(1.0, processed / sent) if done_sending and sent else min(0.3, 0.1 + (now - started) / 10))

    def read_out() -> None:
        nonlocal processed
        for _ in proc.stdout:  # type: ignore[union-attr]
            processed += 1
            progress()

    started = time.monotonic()
    reader = threading.Thread(target=read_out, daemon=True)
    errors = threading.Thread(target=lambda: stderr.append(proc.stderr.read()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    errors.start()
    in_copy = False
    try:
        for chunk in chunks:
            for line in chunk.splitlines(keepends=True):
                if in_copy:
                    in_copy = not line.startswith(b"\\.")
                elif line.endswith(b"\n") and line.strip():  # blank lines: psql echoes none
                    sent += 1
                    in_copy = b"FROM stdin" in line
            try:
                proc.stdin.write(chunk)
            except BrokenPipeError:
                break  # psql stopped (ON_ERROR_STOP): its exit code says why
        done_sending = True
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()
    except (EOFError, OSError, zlib.error) as exc:
        proc.kill()  # nothing is committed: the single transaction dies with psql
        proc.wait()
        raise RestoreError("Error: unexpected end of file" if isinstance(exc, EOFError)
                           else f"Error: {exc}") from None
    code = proc.wait()
    reader.join()
    errors.join()
    if code != 0:
        raise RestoreError(f"Error: {argv[0]} non-zero exit code ({code})\n{b''.join(stderr).decode(errors='replace')}")
    progress(final=True)


async def _psql(db: Database, settings: Settings, chunks: Iterator[bytes], single_transaction: bool,
                on_progress: Callable[[float], None]) -> None:
    launch = await backups.launch_arguments(db, settings, "psql", single_transaction=single_transaction)
    loop = asyncio.get_running_loop()

    def report(value: float) -> None:
        loop.call_soon_threadsafe(on_progress, value)

    await asyncio.to_thread(_replay, launch.argv, launch.env, chunks, report)


async def api_starts(db: Database, settings: Settings) -> None:
    """What the API's start does to the database and media folders (the health check's server)."""
    try:
        await verify_storage(db, settings.media_location, ignore_mount_check_errors=settings.ignore_mount_check_errors)
        await record_start(db, settings.version, settings.fault)
    except StartupError as exc:
        logging.getLogger(f"immich.{exc.context}").error("%s", exc)
        raise RestoreError("Error: Server health check failed, server exited with 1") from None


async def restore(db: Database, settings: Settings, filename: str, progress: Progress) -> None:
    log.debug("Database Restore Started")
    try:
        if not backups.is_valid_name(filename):
            raise RestoreError("Error: Invalid backup file format!")
        path = backups.folder(settings) / filename
        if not path.is_file():
            raise RestoreError(f"Error: ENOENT: no such file or directory, stat '{path}'")
        cluster = is_cluster_dump(filename)
        try:
            launch = await backups.launch_arguments(db, settings, "psql", single_transaction=not cluster)
        except backups.UnsupportedPostgres as exc:
            raise RestoreError(f"Error: {exc}") from None
        progress("backup", 0.05)
        restore_point = await backups.create_backup(db, settings, "restore-point-")
        log.info("Database Restore Starting. Database Version: %s", launch.major)
        head = SQL_DROP_CONNECTIONS.encode() + (b"\n        \\c postgres\n" if cluster
                                                else sql_reset_schema(launch.username).encode())

        def chunks(source: Path) -> Iterator[bytes]:
            yield head
            yield from _backup_lines(source, launch.username)

        def restoring(value: float) -> None:
            log.info("Restore progress ~ %.2f%%", value * 100)
            progress("restore", value)

        await _psql(db, settings, chunks(path), not cluster, restoring)
        await db.reopen(10)  # psql dropped every other connection
        try:
            progress("migrations", 0.9)
            await db.migrate()
            admin = await db.fetchone("SELECT 1 AS found FROM users WHERE is_admin AND deleted_at IS NULL LIMIT 1")
            if admin is None:
                raise RestoreError("Error: Server health check failed, no admin exists.")
            await api_starts(db, settings)
        except Exception:
            progress("rollback", 0)

            def undoing(value: float) -> None:
                log.info("Rollback progress ~ %.2f%%", value * 100)
                progress("rollback", value)

            def rollback_chunks() -> Iterator[bytes]:
                yield SQL_DROP_CONNECTIONS.encode() + sql_reset_schema(launch.username).encode()
                yield from _backup_lines(restore_point, launch.username)

            await _psql(db, settings, rollback_chunks(), True, undoing)
            await db.reopen(10)
            raise
    except RestoreError as exc:
        log.error("Database Restore Failure: %s", exc)
        raise
    except Exception as exc:
        log.error("Database Restore Failure: Error: %s", exc)
        raise RestoreError(f"Error: {exc}") from exc
    log.info("Database Restore Success")
