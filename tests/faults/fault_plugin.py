"""Loaded into ``pytest features/`` by the fault catalogue's tests (``-p tests.faults.fault_plugin``): injects the
fault named by FAULT_INJECT when scenario number FAULT_AT starts (once its fixtures are up), and writes FAULT_DONE.
The scenarios run in the order they are written, whatever plugin of the environment reorders tests: which scenarios
come before the fault (two uploads answered 201) and after it is part of what the catalogue's tests expect."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from immich_conformance.inner_pytest import InOrder
from immich_conformance.procs import wait_until
from tests.faults.catalogue import fill

started = 0


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(InOrder("scenario"), "scenarios-in-order")


@pytest.hookimpl(trylast=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    global started
    if "_pytest_bdd_example" not in getattr(item, "fixturenames", ()):
        return
    started += 1
    if started != int(os.environ["FAULT_AT"]):
        return
    target = item._request.getfixturevalue("target")  # type: ignore[attr-defined]
    kind, _, name = os.environ["FAULT_INJECT"].partition(":")
    if kind == "kill":
        process = target.component(name)
        os.killpg(process.pid, signal.SIGKILL)
        wait_until(lambda: process.proc.poll() is not None, timeout=10, what=f"{name} gone")
    elif kind == "readonly":
        subprocess.run(["mount", "-o", "remount,bind,ro", str(target.nas)], check=True)
    elif kind == "fill":
        fill(target.nas)
    else:
        raise ValueError(f"FAULT_INJECT={os.environ['FAULT_INJECT']!r} is no fault")
    Path(os.environ["FAULT_DONE"]).write_text(kind)
