"""Fixtures for the Immich API double: one real PostgreSQL for the whole run, doubles as subprocesses on loopback.

Every response the tests get through ``api`` is checked against Immich's OpenAPI document (strictly: no undeclared
properties) before the test sees it.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from double_harness import Account, Database, DoubleServer, checked_client, new_database, sign_up_and_log_in

from immich_conformance.double.spec_check import OpenApiSpec, load_spec
from immich_conformance.postgres import LocalPostgres
from immich_conformance.procs import free_port


@pytest.fixture(scope="session")
def run_dir() -> Iterator[Path]:
    # Not pytest's tmp_path: its 0700 parent would keep the postgres user out; a 0711 folder of our own lets it through.
    path = Path(tempfile.mkdtemp(prefix="immich-double-"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres(run_dir: Path) -> Iterator[LocalPostgres]:
    pg = LocalPostgres(run_dir / "pgdata", free_port(), run_dir / "postgres.log").start()
    yield pg
    pg.stop()


@pytest.fixture(scope="session")
def spec() -> OpenApiSpec:
    return load_spec(strict=True)


@pytest.fixture
def double_factory(run_dir: Path, postgres: LocalPostgres) -> Iterator[Any]:
    started: list[DoubleServer] = []

    def make(db: Database | None = None, media: Path | None = None, **extra_env: str) -> DoubleServer:
        server = DoubleServer(run_dir, db or new_database(postgres), media or run_dir / f"media-{uuid.uuid4().hex[:8]}",
                              **extra_env)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def double(run_dir: Path, postgres: LocalPostgres) -> Iterator[DoubleServer]:
    server = DoubleServer(run_dir, new_database(postgres), run_dir / "media").start()
    yield server
    server.stop()


@pytest.fixture
def api(double: DoubleServer, spec: OpenApiSpec) -> Iterator[httpx.Client]:
    """A client on the shared double whose every response is validated against the OpenAPI document."""
    with checked_client(double.url, spec) as client:
        yield client


@pytest.fixture(scope="session")
def admin(double: DoubleServer, spec: OpenApiSpec) -> Account:
    with checked_client(double.url, spec) as client:
        return sign_up_and_log_in(client)
