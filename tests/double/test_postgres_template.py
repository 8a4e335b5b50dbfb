"""A new PostgreSQL server starts from a copy of the machine's template, not from ``initdb``; each copy is its own."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from immich_conformance import postgres_template
from immich_conformance.postgres import INITDB_OPTIONS, PG_HBA, LocalPostgres
from immich_conformance.procs import free_port
from tests.test_run_folders import made_by_a_process_now_gone


@pytest.fixture()
def own_cache(run_dir: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache of this test's own, so that the first start makes the template."""
    cache = run_dir / f"cache-{request.node.name}"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return cache


def _server(run_dir: Path, name: str) -> LocalPostgres:
    """A server of its own (``run_dir`` is the session's: names are not reused across tests)."""
    return LocalPostgres(run_dir / name / "data", free_port(), run_dir / name / "postgres.log")


def _initdb_runs(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    runs: list[Path] = []
    real = LocalPostgres._initdb

    def counted(self: LocalPostgres) -> None:
        runs.append(self.data_dir)
        real(self)

    monkeypatch.setattr(LocalPostgres, "_initdb", counted)
    return runs


def test_the_first_start_makes_the_template_and_the_next_ones_copy_it(
        run_dir: Path, own_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = _initdb_runs(monkeypatch)
    first = _server(run_dir, "template-first").start()
    first.stop()
    template = postgres_template.template_dir(first.bindir / "postgres", [*INITDB_OPTIONS, PG_HBA])
    assert template.is_relative_to(own_cache) and postgres_template.is_complete(template)
    second = _server(run_dir, "template-second").start()
    try:
        assert runs == [first.data_dir]
        with psycopg.connect(second.admin_conninfo(), autocommit=True) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        # The copy keeps the suite's rules: a role logs in over TCP with its password only.
        dsn = second.create_database("copied", "pw", "copied")
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT current_user").fetchone() == ("copied",)
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(second.dsn("copied", "wrong", "copied"), connect_timeout=3).close()
        assert (second.data_dir / "pg_hba.conf").read_text() == PG_HBA
        assert (second.data_dir.stat().st_mode & 0o777) == 0o700
        assert second.data_dir.stat().st_uid == first.data_dir.stat().st_uid
    finally:
        second.stop()


def test_servers_copied_from_one_template_keep_their_data_apart(run_dir: Path, own_cache: Path) -> None:
    one, two = _server(run_dir, "template-one").start(), _server(run_dir, "template-two").start()
    try:
        one.create_database("only_in_one", "pw", "only_in_one")
        with psycopg.connect(two.admin_conninfo()) as conn:
            names = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
        assert "only_in_one" not in names
    finally:
        one.stop()
        two.stop()
    three = _server(run_dir, "template-three").start()
    try:
        with psycopg.connect(three.admin_conninfo()) as conn:
            assert conn.execute("SELECT 1 FROM pg_database WHERE datname = 'only_in_one'").fetchone() is None
    finally:
        three.stop()


def test_other_binaries_or_options_make_another_template(tmp_path: Path) -> None:
    binary = tmp_path / "postgres"
    binary.write_bytes(b"v1")
    before = postgres_template.template_dir(binary, INITDB_OPTIONS)
    assert postgres_template.template_dir(binary, [*INITDB_OPTIONS, "--other"]) != before
    binary.write_bytes(b"v1.1")
    assert postgres_template.template_dir(binary, INITDB_OPTIONS) != before


def test_a_run_that_died_publishing_leaves_nothing_for_the_next(run_dir: Path, own_cache: Path) -> None:
    server = _server(run_dir, "template-after-a-dead-run")
    template = postgres_template.template_dir(server.bindir / "postgres", [*INITDB_OPTIONS, PG_HBA])
    template.parent.mkdir(parents=True)
    left = made_by_a_process_now_gone(template.parent, f".{template.name}.")
    unmarked = template.parent / f".{template.name}.not-ours"  # no run's mark: never touched
    unmarked.mkdir()
    server.start().stop()
    assert postgres_template.is_complete(template)
    assert sorted(p.name for p in template.parent.iterdir()) == sorted([template.name, unmarked.name])
    assert not left.exists()


def test_a_copy_that_fails_halfway_falls_back_to_initdb(
        run_dir: Path, own_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _server(run_dir, "template-made").start().stop()
    real_copy = postgres_template.copy_contents

    def halfway(source: Path, destination: Path) -> None:
        real_copy(source / "base", destination)  # some of it, then a failure (a full disk, a file gone)
        raise postgres_template.TemplateError(f"cannot copy {source} to {destination}: No space left on device")

    monkeypatch.setattr(postgres_template, "copy_contents", halfway)
    runs = _initdb_runs(monkeypatch)
    server = _server(run_dir, "template-copy-failed").start()
    try:
        assert runs == [server.data_dir]
        with psycopg.connect(server.admin_conninfo()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.stop()
