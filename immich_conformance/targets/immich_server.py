"""Another Immich server in the sandbox's place for the double: its command, its extra environment, and what real
Immich needs beside the database the sandbox already gives (a Redis of its own, the vector extension, a superuser role).

    server = ServerCommand.parse("node /opt/immich/server/dist/main.js", Path("immich.env"))
    Sandbox(server=server)

The sandbox gives the command the same Immich environment as the double (IMMICH_HOST, IMMICH_PORT,
IMMICH_MEDIA_LOCATION, DB_*, IMMICH_LOG_LEVEL), plus REDIS_HOSTNAME/REDIS_PORT and DB_VECTOR_EXTENSION=pgvector;
the env file adds to it and may change IMMICH_LOG_LEVEL or DB_VECTOR_EXTENSION, never where the server listens nor
the database and Redis it is given.
"""

from __future__ import annotations

import io
import shlex
import shutil
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dotenv.parser import parse_stream

from ..postgres import LocalPostgres
from ..procs import LOOPBACK

# What the sandbox wires up itself: an env file that set these would point the server away from the sandbox.
WIRED = ("IMMICH_HOST", "IMMICH_PORT", "IMMICH_MEDIA_LOCATION", "DB_URL", "DB_HOSTNAME", "DB_PORT", "DB_USERNAME",
         "DB_PASSWORD", "DB_DATABASE_NAME", "REDIS_URL", "REDIS_HOSTNAME", "REDIS_PORT", "REDIS_SOCKET")
VECTOR_EXTENSION = "vector"
REDIS_INSTALL_HINT = "install Redis: apt-get install redis-server"
PGVECTOR_HINT = ("install pgvector for PostgreSQL {major} (Debian: apt-get install postgresql-{major}-pgvector, "
                 "or build it from github.com/pgvector/pgvector against postgresql-server-dev-{major})")


class ServerCommandError(ValueError):
    """The server command or its env file cannot be used as given."""


@dataclass(frozen=True)
class ServerCommand:
    """The command line of the Immich server to run (shlex-split) and the extra environment from its env file."""

    argv: list[str]
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def shown(self) -> str:
        return shlex.join(self.argv)

    @classmethod
    def parse(cls, command: str, env_file: Path | None = None) -> ServerCommand:
        try:
            argv = shlex.split(command)
        except ValueError as exc:
            raise ServerCommandError(f"--immich-server-cmd {command!r} cannot be split into words ({exc}): "
                                     "check its quotes") from None
        if not argv:
            raise ServerCommandError("--immich-server-cmd is empty: give the command that starts the Immich server")
        if shutil.which(argv[0]) is None:
            raise ServerCommandError(f"--immich-server-cmd: {argv[0]!r} is not an executable file nor a command on "
                                     "PATH: give its full path")
        return cls(argv, read_env_file(env_file) if env_file is not None else {})


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=value lines (dotenv: comments, quotes, ``export``; no ${...} expansion); ServerCommandError names a bad
    line or a variable the sandbox sets itself."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ServerCommandError(f"--immich-server-env {path} cannot be read ({exc.strerror}): give a dotenv file "
                                 "of KEY=value lines") from None
    values: dict[str, str] = {}
    for binding in parse_stream(io.StringIO(text)):
        string = binding.original.string  # a binding may start with the blank lines before it
        line = binding.original.line + string[:len(string) - len(string.lstrip())].count("\n")
        if binding.error or (binding.key is not None and binding.value is None):
            raise ServerCommandError(f"--immich-server-env {path}, line {line}: not a KEY=value line: "
                                     f"{string.strip()!r}")
        if binding.key is None:
            continue  # a comment or a blank line
        if binding.key in WIRED:
            raise ServerCommandError(f"--immich-server-env {path}, line {line}: {binding.key} is set by the sandbox "
                                     "(where the server listens, its media, database and Redis): remove it")
        values[binding.key] = binding.value or ""
    return values


def redis_argv(port: int, data_dir: Path) -> list[str]:
    """Debian's redis-server on ``LOOPBACK:port``, nothing kept on disk, its log on stdout."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServerCommandError(f"no redis-server on PATH, which the Immich server needs: {REDIS_INSTALL_HINT}")
    return [binary, "--bind", LOOPBACK, "--port", str(port), "--protected-mode", "yes", "--save", "",
            "--appendonly", "no", "--dir", str(data_dir), "--daemonize", "no", "--logfile", ""]


def redis_answers(port: int) -> bool:
    """Redis on ``LOOPBACK:port`` answers PING with PONG."""
    with socket.create_connection((LOOPBACK, port), timeout=1) as conn:
        conn.sendall(b"PING\r\n")
        return conn.recv(64).startswith(b"+PONG")


def prepare_database(postgres: LocalPostgres, role: str, dbname: str, note: Callable[[str], None]) -> dict[str, str]:
    """Make ``role`` a superuser (as Immich's postgres image has it) and create the vector extension in ``dbname``
    when the server has it; ``note`` says in one line when it does not. Returns the environment that goes with it."""
    postgres.query(f'ALTER ROLE "{role}" SUPERUSER')
    if postgres.query("SELECT 1 FROM pg_available_extensions WHERE name = %s", (VECTOR_EXTENSION,)):
        postgres.query(f"CREATE EXTENSION IF NOT EXISTS {VECTOR_EXTENSION}", dbname=dbname)
    else:
        note(f"PostgreSQL {postgres.bindir.parent.name} here has no '{VECTOR_EXTENSION}' extension (pgvector), "
             "which real Immich needs for its migrations: "
             + PGVECTOR_HINT.format(major=postgres.bindir.parent.name))
    return {"DB_VECTOR_EXTENSION": "pgvector"}


__all__ = ["ServerCommand", "ServerCommandError", "prepare_database", "read_env_file", "redis_answers", "redis_argv"]
