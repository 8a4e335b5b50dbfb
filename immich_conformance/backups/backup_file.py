"""What an Immich database backup says about itself, read without restoring it: the versions in its name
(``immich-db-backup-<time>-v<immich>-pg<postgres>.sql.gz``) and in its pg_dump header, and whether the gzip stream is
whole."""

from __future__ import annotations

import gzip
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

NAME = re.compile(r"immich-db-backup-(?P<when>\d{8}T\d{6}|\d+)(?:-v(?P<immich>[^-]+)-pg(?P<pg>[^-]+?))?\.sql(?:\.gz)?$")
DUMPED_FROM = re.compile(r"^-- Dumped from database version (\S+)", re.MULTILINE)
DUMPED_BY = re.compile(r"^-- Dumped by pg_dump version (\S+)", re.MULTILINE)
HEADER_BYTES = 64 * 1024
# What only a real Immich server's dump has: its extensions (vector search, earth distance) or its own table names.
REAL_IMMICH = re.compile(r"^(CREATE EXTENSION IF NOT EXISTS (vchord|vector|vectors|earthdistance)\b"
                         r"|CREATE TABLE public\.(asset|album|\"user\") )", re.MULTILINE)


class BackupProblem(RuntimeError):
    """The file cannot be an Immich backup that restores; the message says why in one line."""


@dataclass(frozen=True)
class BackupFile:
    path: Path
    immich_version: str | None
    """From the name (``v3.0.3``), None when the name does not carry it."""
    postgres_version: str | None
    """The database's version: from the dump header, else from the name."""
    pg_dump_version: str | None
    size: int
    real_immich: bool = False
    """Its header shows a real Immich server's schema (its extensions or tables), not the API double's."""

    @property
    def postgres_major(self) -> int | None:
        version = self.pg_dump_version or self.postgres_version
        found = re.match(r"(\d+)", version or "")
        return int(found.group(1)) if found else None


def _read_whole(path: Path) -> str:
    """The start of the SQL, after reading the whole gzip stream (a truncated or corrupt file fails here)."""
    if not path.name.endswith(".gz"):
        with path.open("rb") as f:
            return f.read(HEADER_BYTES).decode(errors="replace")
    head = b""
    try:
        with gzip.open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                if len(head) < HEADER_BYTES:
                    head += chunk[: HEADER_BYTES - len(head)]
    except EOFError:
        raise BackupProblem(f"the backup {path} is cut short: its gzip stream ends before its end marker (an "
                            "incomplete copy, or a backup that failed while it was written); use another backup "
                            "or copy it again") from None
    except (gzip.BadGzipFile, zlib.error, OSError) as exc:
        raise BackupProblem(f"the backup {path} is not a readable gzip file ({exc}); use the .sql.gz file "
                            "Immich wrote in its backups/ folder") from None
    return head.decode(errors="replace")


def inspect_backup(path: Path) -> BackupFile:
    """Read what ``path`` says about itself; BackupProblem when it is missing, cut short, or not an Immich dump."""
    if not path.is_file():
        raise BackupProblem(f"the backup {path} does not exist or is not a file: give the path of an "
                            "immich-db-backup-….sql.gz file from Immich's backups/ folder")
    head = _read_whole(path)
    if "PostgreSQL database dump" not in head:
        raise BackupProblem(f"the backup {path} is not a PostgreSQL dump (no pg_dump header): give a file Immich "
                            "wrote in its backups/ folder")
    named = NAME.search(path.name)
    from_db = DUMPED_FROM.search(head)
    by_dump = DUMPED_BY.search(head)
    return BackupFile(
        path=path,
        immich_version=f"v{named.group('immich')}" if named and named.group("immich") else None,
        postgres_version=from_db.group(1) if from_db else (named.group("pg") if named else None),
        pg_dump_version=by_dump.group(1) if by_dump else None,
        size=path.stat().st_size,
        real_immich=REAL_IMMICH.search(head) is not None,
    )


def check_postgres(backup: BackupFile, release_major: int) -> None:
    """A dump made by a newer pg_dump than the release's Postgres does not load into it."""
    major = backup.postgres_major
    if major is not None and major > release_major:
        dumped = backup.pg_dump_version or backup.postgres_version
        raise BackupProblem(
            f"the backup {backup.path.name} was dumped by PostgreSQL {dumped}"
            f" but the release runs PostgreSQL {release_major}: a dump does not load into an older major; restore it "
            f"into a release with PostgreSQL {major} or newer")
