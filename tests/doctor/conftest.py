from __future__ import annotations

import os
from pathlib import Path

import pytest

from .fakeroot import FakeRoot


@pytest.fixture
def fake(tmp_path: Path) -> FakeRoot:
    if os.geteuid() != 0:
        pytest.skip("the fake root gives Postgres's folder to uid 999, as on a node: needs root")
    return FakeRoot(tmp_path / "root")
