"""The pytest runs a command makes of its own (the rehearsal's phases, the doctor's checks): what the caller's pytest
settings and the plugins installed beside the suite may not change about them.

A phase run is a sequence, not a set of independent tests: the upgrade must follow the seeding, the verification the
upgrade. Plugins that reorder tests take effect by being installed (pytest-randomly shuffles every run it is in), and
a caller's ``PYTEST_ADDOPTS`` (``-k``, ``-n auto``, ``--junitxml``) is meant for the caller's own run; either could
make a gate pass having checked nothing. ``callers_settings_aside`` keeps the environment's settings out of the run,
and ``InOrder`` runs the collected tests in the order they were collected and says when they did not all run so.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CALLERS_SETTINGS = ("PYTEST_ADDOPTS", "PYTEST_PLUGINS")


@contextmanager
def callers_settings_aside() -> Iterator[None]:
    """Within: the environment without the caller's pytest settings; restored afterwards."""
    saved = {name: os.environ.pop(name) for name in CALLERS_SETTINGS if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def without_callers_settings(env: dict[str, str]) -> dict[str, str]:
    """``env`` for a pytest subprocess of the command's own, without the caller's pytest settings."""
    return {name: value for name, value in env.items() if name not in CALLERS_SETTINGS}


class InOrder:
    """A plugin for ``pytest.main(..., plugins=[...])``: the collected tests run in their collection order (put back
    after any plugin reordered them), and ``problem`` says when some did not run, or ran out of that order."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.collected: list[str] = []
        self.ran: list[str] = []

    def pytest_itemcollected(self, item: pytest.Item) -> None:
        self.collected.append(item.nodeid)

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        position = {nodeid: n for n, nodeid in enumerate(self.collected)}
        items.sort(key=lambda item: position.get(item.nodeid, len(position)))

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self.ran.append(nodeid)

    def problem(self) -> str | None:
        """None when every collected test ran once, in collection order; else one line saying what went wrong."""
        if not self.collected:
            return f"no {self.what} was collected"
        if self.ran == self.collected:
            return None
        missing = [nodeid.rpartition("::")[2] for nodeid in self.collected if nodeid not in self.ran]
        if missing:
            return (f"{len(missing)} of the {len(self.collected)} {self.what}s did not run ({', '.join(missing)}): "
                    "a pytest plugin installed in this environment deselected them; uninstall it")
        ran = [nodeid.rpartition("::")[2] for nodeid in self.ran]
        return (f"the {self.what}s ran out of order ({', '.join(ran)}): a pytest plugin installed in this "
                "environment reorders tests; uninstall it")


def passed_tests(junit: Path) -> int:
    """How many tests of a pytest run's JUnit report passed (neither failed, erred nor skipped)."""
    cases = ET.parse(junit).getroot().iter("testcase")
    return sum(1 for case in cases if not any(case.find(tag) is not None for tag in ("failure", "error", "skipped")))
