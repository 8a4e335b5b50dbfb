"""--immich-server-cmd / --immich-server-env: the contract run against a server the sandbox starts from a command.

The double itself, started through the option, stands in for real Immich: a small wrapper records what the server
process was given (Redis answering at REDIS_HOSTNAME:REDIS_PORT, the env file's values, the database role and
extensions), then becomes the double.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from immich_conformance import REPO_ROOT
from immich_conformance.postgres import find_bindir
from immich_conformance.procs import port_open
from immich_conformance.targets.immich_server import ServerCommand, ServerCommandError, read_env_file

DOUBLE = f"{shlex.quote(sys.executable)} -m immich_conformance.double"
WRAPPER = """
import json, os, socket, sys
import psycopg

host, port = os.environ["REDIS_HOSTNAME"], int(os.environ["REDIS_PORT"])
with socket.create_connection((host, port), timeout=5) as conn:
    conn.sendall(b"PING\\r\\n")
    pong = conn.recv(64).decode().strip()
db = psycopg.connect(host=os.environ["DB_HOSTNAME"], port=os.environ["DB_PORT"], user=os.environ["DB_USERNAME"],
                     password=os.environ["DB_PASSWORD"], dbname=os.environ["DB_DATABASE_NAME"])
with db:
    superuser = db.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]
    extensions = [row[0] for row in db.execute("SELECT extname FROM pg_extension")]
with open(os.environ["SERVER_PROBE_REPORT"], "w") as report:
    json.dump({"redis_port": port, "redis_host": host, "pong": pong, "superuser": superuser,
               "extensions": extensions, "log_level": os.environ.get("IMMICH_LOG_LEVEL"),
               "vector_extension": os.environ.get("DB_VECTOR_EXTENSION"),
               "quoted": os.environ.get("QUOTED_VALUE")}, report)
os.execv(sys.executable, [sys.executable, "-m", "immich_conformance.double"])
"""


def run_features(*args: str, env: dict[str, str] | None = None,
                 timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "features/", "-p", "no:cacheprovider", "-q", *args],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})},
    )


def vector_installed() -> bool:
    bindir = find_bindir()
    return (Path("/usr/share/postgresql") / bindir.parent.name / "extension" / "vector.control").exists()


@pytest.mark.slow
def test_the_contract_passes_against_the_double_started_as_a_server_command(tmp_path: Path) -> None:
    wrapper, report, env_file = tmp_path / "server.py", tmp_path / "report.json", tmp_path / "immich.env"
    wrapper.write_text(WRAPPER)
    env_file.write_text(f"# extra environment for the server\nIMMICH_LOG_LEVEL=verbose\n"
                        f"SERVER_PROBE_REPORT={report}\nexport QUOTED_VALUE=\"two words # not a comment\"\n")
    result = run_features("--immich-server-cmd", f"{shlex.quote(sys.executable)} {shlex.quote(str(wrapper))}",
                          "--immich-server-env", str(env_file))
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-4000:]
    assert " passed" in out and " failed" not in out and " error" not in out, out[-4000:]
    seen = json.loads(report.read_text())
    assert seen["pong"] == "+PONG" and seen["redis_host"] == "127.0.0.1", seen
    assert not port_open(seen["redis_port"]), "the sandbox's Redis still runs after the run"
    assert seen["log_level"] == "verbose" and seen["quoted"] == "two words # not a comment", seen
    assert seen["superuser"] is True and seen["vector_extension"] == "pgvector", seen
    missing_line = "no 'vector' extension (pgvector)"
    if vector_installed():
        assert "vector" in seen["extensions"] and missing_line not in out, seen
    else:
        assert "vector" not in seen["extensions"], seen
        assert sum(missing_line in line for line in out.splitlines()) == 1, out[-4000:]


@pytest.mark.slow
def test_a_server_that_exits_at_once_fails_the_run_in_one_line() -> None:
    command = f"{shlex.quote(sys.executable)} -c \"print('no geodata files found'); raise SystemExit(3)\""
    result = run_features(env={"IMMICH_CONFORMANCE_IMMICH_SERVER_CMD": command}, timeout=120)
    out = result.stdout + result.stderr
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, out[-4000:]
    headline = [line for line in out.splitlines() if "--immich-server-cmd: the Immich server" in line]
    assert len(headline) == 1 and "exited with code 3" in headline[0], out[-4000:]
    assert shlex.split(command)[0] in headline[0] and "no geodata files found" in out
    assert "Traceback" not in out and " passed" not in out


@pytest.mark.slow
def test_the_env_file_reaches_the_server(tmp_path: Path) -> None:
    """Immich (and the double) exit 1 on an upper-case IMMICH_LOG_LEVEL: the file's value, not the sandbox's."""
    env_file = tmp_path / "immich.env"
    env_file.write_text("IMMICH_LOG_LEVEL=VERBOSE\n")
    result = run_features("--immich-server-cmd", DOUBLE, "--immich-server-env", str(env_file), timeout=120)
    out = result.stdout + result.stderr
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, out[-4000:]
    assert "exited with code 1" in out and "IMMICH_LOG_LEVEL='VERBOSE' is not a log level" in out, out[-4000:]
    assert "Traceback" not in out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--immich-server-cmd", "no-such-immich-server --port 1"], "'no-such-immich-server' is not an executable"),
        (["--immich-server-cmd", "node 'main.js"], "cannot be split into words"),
        (["--immich-server-env", "immich.env"], "--immich-server-env is the environment of --immich-server-cmd"),
        (["--immich-server-cmd", DOUBLE, "--target", "cluster", "--kubeconfig", "/nonexistent"],
         "use it with the default --target sandbox"),
        (["--immich-server-cmd", DOUBLE, "--runtime", "containers"], "use it with the default --target sandbox"),
        (["--immich-server-cmd", DOUBLE, "--immich-server-env", "/nonexistent/immich.env"], "cannot be read"),
    ],
)
def test_wrong_options_stop_the_run_before_anything_starts(args: list[str], expected: str) -> None:
    result = run_features("--collect-only", *args, timeout=60)
    out = result.stdout + result.stderr
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, out[-2000:]
    assert "Traceback" not in out and expected in out, out[-2000:]


def test_the_env_file_may_not_move_what_the_sandbox_wires(tmp_path: Path) -> None:
    env_file = tmp_path / "immich.env"
    env_file.write_text("IMMICH_LOG_LEVEL=log\n\nDB_PORT=5432\n")
    with pytest.raises(ServerCommandError, match=r"line 3: DB_PORT is set by the sandbox"):
        read_env_file(env_file)


def test_the_env_file_names_a_line_it_cannot_read(tmp_path: Path) -> None:
    env_file = tmp_path / "immich.env"
    env_file.write_text("IMMICH_LOG_LEVEL=log\nTZ='Europe/Paris\n")
    with pytest.raises(ServerCommandError, match=r"line 2: not a KEY=value line"):
        read_env_file(env_file)
    env_file.write_text("JUST_A_NAME\n")
    with pytest.raises(ServerCommandError, match=r"line 1: not a KEY=value line"):
        read_env_file(env_file)


def test_a_command_is_split_as_a_shell_would(tmp_path: Path) -> None:
    env_file = tmp_path / "immich.env"
    env_file.write_text("# comment\nexport IMMICH_MACHINE_LEARNING_ENABLED=false\nTZ='Europe/Paris'\n")
    server = ServerCommand.parse(f"{sys.executable} -c 'print(1)'  --flag", env_file)
    assert server.argv == [sys.executable, "-c", "print(1)", "--flag"]
    assert server.extra_env == {"IMMICH_MACHINE_LEARNING_ENABLED": "false", "TZ": "Europe/Paris"}
