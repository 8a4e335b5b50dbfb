"""The local PostgreSQL launcher: real server, loopback only, password over TCP, data kept, nothing left running."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest

from immich_conformance.postgres import LocalPostgres, PostgresError, PostgresNotInstalled, find_bindir
from immich_conformance.procs import free_port

FAST_SHUTDOWN, SHUT_DOWN = "received fast shutdown request", "database system is shut down"


def _processes_using(path: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(path) in cmdline:
            found.append(int(entry.name))
    return found


def test_start_stop_restart_keeps_data_and_leaves_no_process(run_dir: Path) -> None:
    data = run_dir / "pg-restart" / "data"
    log = run_dir / "pg-restart" / "postgres.log"
    pg = LocalPostgres(data, free_port(), log).start()
    try:
        dsn = pg.create_database("keeper", "s3cret'quote", "keeper")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (value text)")
            conn.execute("INSERT INTO kept VALUES ('still here')")
    finally:
        pg.stop()
    assert _processes_using(data) == []

    again = LocalPostgres(data, free_port(), log).start()
    try:
        with psycopg.connect(again.dsn("keeper", "s3cret'quote", "keeper")) as conn:
            assert conn.execute("SELECT value FROM kept").fetchall() == [("still here",)]
        # A client still connected does not hold up the (fast) shutdown.
        lingering = psycopg.connect(again.dsn("keeper", "s3cret'quote", "keeper"))
    finally:
        logged_before = len(log.read_text())
        again.stop()
    lingering.close()
    # A smart shutdown waits for that client until the stop's timeout and is killed: no line that it shut down.
    said = log.read_text()[logged_before:]
    assert FAST_SHUTDOWN in said and SHUT_DOWN in said, said[-2000:]
    assert _processes_using(data) == []


def test_tcp_needs_the_password_and_listens_on_loopback_only(postgres: LocalPostgres) -> None:
    dsn = postgres.create_database("pwcheck", "right-password", "pwcheck")
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("pwcheck",)
    assert postgres.query("SHOW listen_addresses") == [("127.0.0.1",)]
    assert postgres.query("SHOW unix_socket_directories") == [(str(postgres.socket_dir),)]
    assert postgres.socket_dir.parent == postgres.data_dir.parent  # inside the run's own folder
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(postgres.dsn("pwcheck", "wrong-password", "pwcheck"), connect_timeout=5)
    assert postgres.immich_env()["DB_PORT"] == str(postgres.port)


def test_create_database_is_idempotent_and_rejects_bad_names(postgres: LocalPostgres) -> None:
    first = postgres.create_database("twice", "one", "twice")
    second = postgres.create_database("twice", "two", "twice")
    assert first != second
    with psycopg.connect(second) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("twice",)
    with pytest.raises(PostgresError, match="invalid role name"):
        postgres.create_database("bad-name; DROP", "pw", "ok")


def test_missing_binaries_name_the_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("POSTGRES_BINDIR", str(tmp_path))
    with pytest.raises(PostgresNotInstalled, match="apt-get install postgresql"):
        find_bindir()


def test_refuses_a_folder_that_is_not_a_cluster(run_dir: Path) -> None:
    data = run_dir / "pg-not-a-cluster"
    data.mkdir()
    (data / "something.txt").write_text("not postgres")
    with pytest.raises(PostgresError, match="holds no PostgreSQL cluster"):
        LocalPostgres(data, free_port(), run_dir / "pg-not-a-cluster.log").start()


def test_bindir_is_found() -> None:
    bindir = find_bindir()
    assert (bindir / "postgres").is_file() and os.access(bindir / "initdb", os.X_OK)
