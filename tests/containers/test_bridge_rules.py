"""Rules naming a containers run's bridge once the bridge is gone are removed (another program that rewrites a whole
table, kube-router's policy controller, can write back rules Docker removed with the network); rules naming a bridge
that is there, or a bridge that is not a run's, stay. In the mangle table, which neither Docker nor kube-router
rewrites, so that nothing else touches these rules meanwhile."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from immich_conformance.containers import cleanup

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("iptables") is None,
                                reason="changing iptables rules needs root and iptables")
TABLE = "mangle"


def rule(interface: str, mark: str) -> list[str]:
    return ["FORWARD", "-i", interface, "-o", interface, "-m", "comment", "--comment", f"test {mark}", "-j", "RETURN"]


def present(spec: list[str]) -> bool:
    return subprocess.run(["iptables", "-w", "-t", TABLE, "-C", *spec], capture_output=True).returncode == 0


@pytest.fixture
def live_bridge() -> Iterator[str]:
    """A run's bridge that is there (a bridge of that name, made here)."""
    name = cleanup.bridge_name(uuid.uuid4().hex)
    subprocess.run(["ip", "link", "add", name, "type", "bridge"], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "link", "delete", name], check=False)


def test_only_rules_naming_a_gone_bridge_of_a_run_are_removed(live_bridge: str) -> None:
    mark = uuid.uuid4().hex[:8]
    gone = rule(cleanup.bridge_name(uuid.uuid4().hex), mark)
    there = rule(live_bridge, mark)
    not_a_runs = rule(f"br-{uuid.uuid4().hex[:12]}", mark)
    for spec in (gone, there, not_a_runs):
        subprocess.run(["iptables", "-w", "-t", TABLE, "-A", *spec], check=True)
    try:
        removed = cleanup.remove_stale_bridge_rules((TABLE,))
        assert not present(gone), "a rule naming a gone bridge of a run's network stays"
        assert present(there), "a rule naming a bridge that is there was removed"
        assert present(not_a_runs), "a rule naming a bridge that is not a run's was removed"
        assert [line for line in removed if mark in line] == [
            f"-t {TABLE} -A {' '.join(gone[:-6])} -m comment --comment \"test {mark}\" -j RETURN"], removed
    finally:
        for spec in (gone, there, not_a_runs):
            while present(spec):
                subprocess.run(["iptables", "-w", "-t", TABLE, "-D", *spec], check=False)
