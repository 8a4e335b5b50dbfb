"""A component of the processes sandbox that dies mid-run is named, with how and its last log lines: by the target,
by the scenarios (one line, no connection errors), and by `immich-conformance sandbox` (exit status 3)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from immich_conformance import REPO_ROOT
from immich_conformance.procs import wait_until
from immich_conformance.targets.sandbox import Sandbox

from ..cli.test_sandbox_command import start_in_background

KILLER_PLUGIN = '''
import os, signal
import pytest

started = 0


@pytest.hookimpl(trylast=True)
def pytest_runtest_setup(item):
    """At the third scenario, once its fixtures are up: SIGKILL the Immich double."""
    global started
    if "_pytest_bdd_example" not in getattr(item, "fixturenames", ()):
        return
    started += 1
    if started == 3:
        target = item._request.getfixturevalue("target")
        os.kill(target._processes["immich-server"].pid, signal.SIGKILL)
'''


@pytest.mark.slow
def test_the_sandbox_names_its_killed_immich_with_the_signal_and_its_log(tmp_path: Path) -> None:
    with Sandbox(tmp_path / "sandbox") as sandbox:
        assert sandbox.dead_components() == [], "a component is called dead while all run"
        os.kill(sandbox._processes["immich-server"].pid, signal.SIGKILL)
        deaths = wait_until(sandbox.dead_components, timeout=10, what="the killed Immich double recorded")
        assert [d.name for d in deaths] == ["immich-server"], deaths
        assert re.fullmatch(r"immich-server exited with signal 9 \(SIGKILL\) at \d\d:\d\d:\d\d; last log lines "
                            r"attached", deaths[0].line), deaths[0].line
        assert deaths[0].log_tail.strip(), "the double's last log lines are missing"
        assert str(sandbox.logs / "immich-server.log") in deaths[0].details
    assert [d.name for d in sandbox.dead_components()] == ["immich-server"], \
        "components stopped on purpose by close() were recorded as deaths"


@pytest.mark.slow
def test_scenarios_after_the_double_dies_fail_with_its_one_line(tmp_path: Path) -> None:
    (tmp_path / "kill_double_plugin.py").write_text(KILLER_PLUGIN)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "features/", "-p", "no:cacheprovider", "-p", "kill_double_plugin", "-q",
         "-rfE"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, env=env,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 1, out[-4000:]
    counts = dict((word, int(n)) for n, word in re.findall(r"(\d+) (failed|passed|errors?)\b", out.splitlines()[-1]))
    failed = counts.get("failed", 0)
    assert failed >= 2 and not counts.get("error") and not counts.get("errors"), out[-4000:]
    line = re.compile(r"^immich-server exited with signal 9 \(SIGKILL\) at \d\d:\d\d:\d\d; last log lines attached$",
                      re.MULTILINE)
    assert len(line.findall(out)) == failed, f"a failure does not say in one line that the double died:\n{out[-6000:]}"
    assert "ConnectError" not in out and "upstream connect error" not in out, out[-4000:]
    assert out.count("Captured stdout immich-server exit") == 1 and "last 20 lines of" in out, \
        "the double's last log lines are not attached once"


def double_pid(workdir: Path) -> int:
    """The Immich double of the sandbox in ``workdir`` (its media location is there), among any others running."""
    found = subprocess.run(["pgrep", "-f", "immich_conformance.double"], capture_output=True, text=True).stdout
    for pid in map(int, found.split()):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"IMMICH_MEDIA_LOCATION={workdir.resolve() / 'nas'}".encode() in environ:
            return pid
    raise AssertionError(f"no Immich double of the sandbox in {workdir} runs")


@pytest.mark.slow
def test_the_sandbox_command_exits_3_with_the_line_when_its_double_dies(tmp_path: Path) -> None:
    workdir = tmp_path / "sandbox"
    proc, lines = start_in_background(workdir)
    try:
        log = workdir / "logs" / "immich-server.log"
        os.kill(double_pid(workdir), signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    text = "".join(lines) + out
    assert proc.returncode == 3, text[-3000:]
    assert re.search(r"immich-conformance sandbox: immich-server exited with signal 9 \(SIGKILL\) at "
                     r"\d\d:\d\d:\d\d", text), text[-3000:]
    assert f"last 20 lines of {log}" in text, text[-3000:]
    assert not workdir.exists(), "the rest was not stopped cleanly (the sandbox folder was left behind)"
