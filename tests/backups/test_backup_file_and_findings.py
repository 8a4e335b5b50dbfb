"""What a backup file says about itself (read without a server), and integrity findings compared over time."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from immich_conformance.backups import BackupProblem, IntegrityFindings, inspect_backup
from immich_conformance.backups.backup_file import check_postgres

HEADER = (b"--\n-- PostgreSQL database dump\n--\n\n-- Dumped from database version 16.4 (Debian 16.4-1.pgdg120+2)\n"
          b"-- Dumped by pg_dump version 16.4 (Debian 16.4-1.pgdg120+2)\n\nSET statement_timeout = 0;\n")


def test_the_versions_come_from_the_name_and_the_dump_header(tmp_path: Path) -> None:
    path = tmp_path / "immich-db-backup-20261203T020000-v3.0.3-pg16.4.sql.gz"
    path.write_bytes(gzip.compress(HEADER + b"CREATE TABLE public.assets (id uuid);\n"))
    info = inspect_backup(path)
    assert (info.immich_version, info.postgres_version, info.pg_dump_version) == ("v3.0.3", "16.4", "16.4")
    assert info.postgres_major == 16 and not info.real_immich
    check_postgres(info, 16)
    with pytest.raises(BackupProblem, match="dumped by PostgreSQL 16.4 but the release runs PostgreSQL 15"):
        check_postgres(info, 15)


def test_a_file_that_is_no_dump_or_cut_short_is_refused(tmp_path: Path) -> None:
    notes = tmp_path / "notes.sql.gz"
    notes.write_bytes(gzip.compress(b"shopping list\n"))
    with pytest.raises(BackupProblem, match="not a PostgreSQL dump"):
        inspect_backup(notes)
    cut = tmp_path / "cut.sql.gz"
    cut.write_bytes(gzip.compress(HEADER * 50)[:-12])
    with pytest.raises(BackupProblem, match="cut short"):
        inspect_backup(cut)
    with pytest.raises(BackupProblem, match="does not exist"):
        inspect_backup(tmp_path / "absent.sql.gz")


def test_only_new_damage_counts_after_an_upgrade() -> None:
    before = IntegrityFindings({"missing_file": 1, "checksum_mismatch": 0, "untracked_file": 2},
                               {"missing_file": ["upload/a.jpg"], "untracked_file": ["upload/x", "upload/y"]})
    after = IntegrityFindings({"missing_file": 2, "checksum_mismatch": 1, "untracked_file": 3},
                              {"missing_file": ["upload/a.jpg", "upload/b.jpg"], "checksum_mismatch": ["upload/c.jpg"],
                               "untracked_file": ["upload/x", "upload/y", "upload/z"]})
    assert after.new_since(before) == {"missing_file": ["upload/b.jpg"], "checksum_mismatch": ["upload/c.jpg"]}
    assert before.new_since(before) == {}
