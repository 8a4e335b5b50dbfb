"""``immich-conformance verify-backup``: a backup the double wrote restores into the sandbox and is reported; each
fault (a truncated gzip, a dump of a newer Postgres, a dump of another application, a library with a file missing or
altered) ends in one line on stderr and exit 1. The user's library folder is the same, path for path and time for
time, after every run."""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from double_harness import REPO_ROOT, sign_up_and_log_in, upload_form, wait_for

from immich_conformance.backups.library import tree_state


@dataclass
class Seeded:
    backup: Path
    library: Path
    originals: list[Path]  # relative to the library


@pytest.fixture
def seeded(double_factory: Any, run_dir: Path) -> Seeded:
    """A double with an admin, three uploads and an album, its backup, and its media folder copied as "the user's
    library" (the double stopped first, as a user's server would be for a copy)."""
    server = double_factory().start()
    with httpx.Client(base_url=server.url, timeout=10) as client:
        key = sign_up_and_log_in(client).api_key
        client.cookies.clear()
        client.headers["x-api-key"] = key
        ids = [client.post("/api/assets", **upload_form(os.urandom(6_000 + i), name=f"img{i}.jpg")).json()["id"]
               for i in range(3)]
        client.post("/api/albums", json={"albumName": "Trip", "assetIds": ids[:2]})
        paths = [Path(client.get(f"/api/assets/{i}").json()["originalPath"]) for i in ids]
        assert client.post("/api/jobs", json={"name": "backup-database"}).status_code == 204
        names = wait_for(lambda: client.get("/api/admin/database-backups").json()["backups"], "the backup")
    server.stop()
    user = run_dir / f"user-{server.port}"
    library = user / "library"
    shutil.copytree(server.media, library, copy_function=shutil.copy2)
    backup = user / names[0]["filename"]
    shutil.copy2(library / "backups" / names[0]["filename"], backup)
    return Seeded(backup, library, [p.relative_to(server.media) for p in paths])


def _verify(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, "-m", "immich_conformance.cli", "verify-backup", *args], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=300)


def _fails_with(result: subprocess.CompletedProcess[str], *phrases: str) -> str:
    assert result.returncode == 1, (result.returncode, result.stdout[-2000:], result.stderr[-2000:])
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr and len(lines) == 1, result.stderr
    for phrase in phrases:
        assert phrase in lines[0], lines[0]
    return lines[0]


def test_a_backup_the_double_wrote_restores_and_is_reported(seeded: Seeded) -> None:
    before = tree_state(seeded.library)
    result = _verify(str(seeded.backup), "--library", str(seeded.library))
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-2000:])
    out = result.stdout
    assert re.search(r"written by: Immich v3\.0\.3, PostgreSQL \d+\.\d+ \(pg_dump \d+\.\d+", out), out
    assert "users:      1 (admin@example.com)" in out and "assets:     3" in out and "albums:     1" in out
    assert "integrity:  0 missing, 0 checksum mismatches, 0 untracked files" in out
    assert "verdict:    this backup restores" in out
    assert tree_state(seeded.library) == before, "the user's library folder changed"


def test_a_library_with_a_file_missing_and_one_altered_fails_naming_them(seeded: Seeded, run_dir: Path) -> None:
    damaged = seeded.library.parent / "damaged"
    shutil.copytree(seeded.library, damaged, copy_function=shutil.copy2)
    (damaged / seeded.originals[0]).unlink()
    (damaged / seeded.originals[1]).write_bytes(b"bit rot")
    before = tree_state(damaged)
    line = _fails_with(_verify(str(seeded.backup), "--library", str(damaged)), "library is damaged")
    assert f"missing file: {seeded.originals[0]}" in line and f"checksum mismatch: {seeded.originals[1]}" in line
    assert tree_state(damaged) == before


def test_a_truncated_backup_fails_before_anything_starts(seeded: Seeded) -> None:
    data = seeded.backup.read_bytes()
    seeded.backup.write_bytes(data[: len(data) // 2])
    _fails_with(_verify(str(seeded.backup)), "is cut short")


def test_a_dump_of_a_newer_postgres_fails(seeded: Seeded) -> None:
    sql = gzip.decompress(seeded.backup.read_bytes()).decode()
    newer = re.sub(r"-- Dumped by pg_dump version \S+", "-- Dumped by pg_dump version 99.1", sql)
    target = seeded.backup.with_name("immich-db-backup-20260101T000000-v3.0.3-pg99.1.sql.gz")
    target.write_bytes(gzip.compress(newer.encode()))
    _fails_with(_verify(str(target), "--library", str(seeded.library)), "PostgreSQL 99.1", "release runs PostgreSQL")


def test_a_dump_of_another_application_fails(seeded: Seeded, postgres: Any) -> None:
    dsn = postgres.create_database("shop", "shop-pw", "shop")
    with __import__("psycopg").connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS invoices (id integer PRIMARY KEY, total numeric)")
    dump = subprocess.run(["pg_dump", "--clean", "--if-exists", dsn], capture_output=True, check=True).stdout
    other = seeded.backup.with_name("shop-nightly.sql.gz")
    other.write_bytes(gzip.compress(dump))
    _fails_with(_verify(str(other)), "does not restore", "no admin exists", "another application")


def test_a_real_immich_backup_is_refused_by_the_double_sandbox(run_dir: Path) -> None:
    real = run_dir / "immich-db-backup-20261203T020000-v3.0.3-pg14.17.sql.gz"
    real.write_bytes(gzip.compress(b"--\n-- PostgreSQL database dump\n--\n\n-- Dumped from database version 14.17\n"
                                   b"CREATE EXTENSION IF NOT EXISTS vchord WITH SCHEMA public;\n"
                                   b'CREATE TABLE public."user" (id uuid);\n'))
    _fails_with(_verify(str(real)), "is of a real Immich server", "real images")


def test_a_backup_of_the_double_is_refused_by_the_real_images(seeded: Seeded) -> None:
    """The real images restore only real Immich backups: refused before any container starts."""
    _fails_with(_verify(str(seeded.backup), "--runtime", "containers"), "written by the Immich API double",
                "--images local")
