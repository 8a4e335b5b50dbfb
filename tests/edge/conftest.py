"""Fixtures for the edge stand-in's tests: one recording origin and one sandbox CA per session, edges per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from immich_conformance.tls import write_server_files

from .support import TEAM_DOMAIN, EdgeHandle, RecordingOrigin, start_edge


@pytest.fixture(scope="session")
def origin() -> Iterator[RecordingOrigin]:
    server = RecordingOrigin().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _fresh_origin_records(origin: RecordingOrigin) -> None:
    origin.clear()


@pytest.fixture(scope="session")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("team-tls")
    write_server_files(directory, [TEAM_DOMAIN])
    return directory


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory, origin: RecordingOrigin, tls_dir: Path) -> Iterator[EdgeHandle]:
    handle = start_edge(tmp_path_factory.mktemp("edge"), origin, tls_dir)
    yield handle
    handle.process.stop()
