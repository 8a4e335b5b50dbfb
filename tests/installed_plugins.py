"""pytest plugins installed beside the suite as a person's environment may have them (a distribution with a
``pytest11`` entry point on ``sys.path``, as pytest-randomly is), for tests of the runs a command makes of its own."""

from __future__ import annotations

from pathlib import Path

import pytest

REVERSES = '''
import pytest


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_collection_modifyitems(items):
    items.reverse()  # before every other plugin's reordering, as pytest-randomly shuffles
    return (yield)
'''
"""Reverses the order of every run's tests."""

DESELECTS_ONE = '''
import pytest


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(config, items):
    result = yield  # after every other plugin
    dropped = items.pop(len(items) // 2)
    config.hook.pytest_deselected(items=[dropped])
    return result
'''
"""Deselects the middle test of every run, after every other plugin ordered them."""


def install(name: str, source: str, where: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Install ``source`` as the pytest plugin module ``name`` (a distribution of its own under ``where``): every
    pytest run this process starts from now loads it (``monkeypatch`` takes it off ``sys.path`` afterwards)."""
    where.mkdir(parents=True, exist_ok=True)
    (where / f"{name}.py").write_text(source)
    info = where / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[pytest11]\n{name} = {name}\n")
    monkeypatch.syspath_prepend(str(where))
