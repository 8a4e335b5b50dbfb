"""The edge as a process: a quick start, a clean stop on SIGTERM, and clear refusals of bad configurations."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from immich_conformance.procs import free_port

from .support import RecordingOrigin, edge_env, start_edge, write_edge_config


def test_starts_and_stops_cleanly_on_sigterm(tmp_path: Path, origin: RecordingOrigin, tls_dir: Path) -> None:
    handle = start_edge(tmp_path, origin, tls_dir)
    handle.process.stop(timeout=5)
    assert handle.process.proc is not None and handle.process.proc.returncode == 0, handle.process.log_tail()
    log = handle.process.log_tail()
    assert "edge ready" in log and "stopped;" in log


def _run(config_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "immich_conformance.edge", "--config", str(config_path)],
                          capture_output=True, text=True, timeout=30, env=edge_env())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"listen": "0.0.0.0:8080"}, "not a loopback address"),
        ({"origin_url": "https://127.0.0.1:9"}, "origin_url"),
        ({"max_body_bytes": -1}, "max_body_bytes"),
        ({"surprise": 1}, "unknown key(s) surprise"),
        ({"key_ring_file": "missing.json"}, "does not exist"),
        ({"team_domain": "another.cloudflareaccess.test"}, "belongs to team"),
        ({"team_tls_key": "ring.json"}, "team_tls_key"),
    ],
    ids=["non-loopback", "https-origin", "negative-limit", "unknown-key", "missing-ring", "wrong-team", "bad-key"],
)
def test_a_bad_configuration_is_refused_with_a_clear_message(tmp_path: Path, origin: RecordingOrigin, tls_dir: Path,
                                                             change: dict[str, object], message: str) -> None:
    _, config, _, ring_path = write_edge_config(tmp_path, origin, tls_dir)  # a working configuration to spoil
    config.update(change)
    if "team_tls_key" in change:
        config["team_tls_key"] = str(ring_path)  # a file that is not a key
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(config))
    result = _run(bad)
    assert result.returncode == 2
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_a_port_in_use_is_reported(tmp_path: Path, origin: RecordingOrigin, tls_dir: Path) -> None:
    first = start_edge(tmp_path / "first", origin, tls_dir)
    try:
        config = {**first.config, "team_listen": f"127.0.0.1:{free_port()}"}
        path = tmp_path / "second.json"
        path.write_text(json.dumps(config))
        result = _run(path)
    finally:
        first.process.stop()
    assert result.returncode == 2 and "cannot listen on" in result.stderr and "Traceback" not in result.stderr
