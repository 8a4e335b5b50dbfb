"""A real PostgreSQL server run as a local process: one data directory, loopback only, started and stopped on demand.

Uses the server binaries of the machine's PostgreSQL packages (Debian: ``/usr/lib/postgresql/<major>/bin``). Postgres
refuses to run as root, so when the caller is root the server (and ``initdb``) run as the ``postgres`` system user via
``setpriv``, with the data and socket directories owned by that user.

Authentication: over TCP (127.0.0.1 only) every role needs its password (SCRAM); the superuser ``postgres`` has no
password and is reachable only through the unix socket, whose directory lives next to the data directory and is readable
by nobody else. A started server is a child of the process that started it and gets SIGINT (fast shutdown) if that
process dies, so start it from a long-lived thread (the main thread, a pytest fixture).

    pg = LocalPostgres(run_dir / "pgdata", free_port(), run_dir / "postgres.log").start()
    dsn = pg.create_database("immich", "secret", "immich")
    ...
    pg.stop()
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import quote

from immich_conformance import postgres_template
from immich_conformance.postgres_memory import release_killed_server_memory
from immich_conformance.procs import LOOPBACK, ManagedProcess

SERVER_USER = "postgres"
SUPERUSER = "postgres"
BINDIR_GLOB = "/usr/lib/postgresql/*/bin"
INSTALL_HINT = "install the PostgreSQL server: apt-get install postgresql"
# Linux limits a unix socket path (sun_path) to 107 bytes; the server adds "/.s.PGSQL.<port>" to the directory.
MAX_SOCKET_PATH = 107
INITDB_OPTIONS = ("-U", SUPERUSER, "-E", "UTF8", "--locale=C.UTF-8", "--auth-local=trust", "--auth-host=scram-sha-256",
                  "--no-instructions")
# Only loopback TCP (with a password) and the private unix socket (superuser administration) are accepted.
PG_HBA = ("# TYPE  DATABASE  USER  ADDRESS        METHOD\n"
          "local   all       all                  trust\n"
          "host    all       all   127.0.0.1/32   scram-sha-256\n")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class PostgresError(RuntimeError):
    """The local PostgreSQL server could not be set up, started or used."""


class PostgresNotInstalled(PostgresError):
    """No PostgreSQL server binaries on this machine."""


def find_bindir() -> Path:
    """The newest ``/usr/lib/postgresql/<major>/bin`` that holds ``initdb`` and ``postgres`` (or $POSTGRES_BINDIR)."""
    override = os.environ.get("POSTGRES_BINDIR")
    candidates = [Path(override)] if override else sorted(
        (Path(p) for p in glob.glob(BINDIR_GLOB)), key=lambda p: _major_of(p), reverse=True
    )
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "postgres").is_file():
            return bindir
    where = f"POSTGRES_BINDIR={override}" if override else BINDIR_GLOB
    raise PostgresNotInstalled(f"no PostgreSQL server binaries (initdb, postgres) found in {where}; {INSTALL_HINT}")


def _major_of(bindir: Path) -> int:
    try:
        return int(bindir.parent.name.split(".")[0])
    except ValueError:
        return -1


def _check_identifier(kind: str, value: str) -> str:
    if not _IDENTIFIER.match(value):
        raise PostgresError(
            f"invalid {kind} {value!r}: use letters, digits and underscores (not starting with a digit), "
            "at most 63 characters"
        )
    return value


def _quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class LocalPostgres:
    """One PostgreSQL server on 127.0.0.1:``port`` with its data in ``data_dir`` and its log in ``log_path``.

    ``start()`` runs ``initdb`` when ``data_dir`` is missing or empty and keeps the data of an existing cluster.
    ``create_database(user, password, dbname)`` makes (or updates) a login role and a database it owns and returns the
    TCP DSN; ``dsn()`` gives DSNs; ``immich_env()`` the DB_* variables Immich reads; ``stop()`` shuts the server down.
    """

    def __init__(
        self,
        data_dir: Path,
        port: int,
        log_path: Path,
        *,
        socket_dir: Path | None = None,
        durable: bool = False,
        start_timeout: float = 15.0,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.port = int(port)
        self.log_path = Path(log_path).absolute()
        default_socket_dir = self.data_dir.parent / f"{self.data_dir.name}.sock"
        self.socket_dir = Path(socket_dir).absolute() if socket_dir else default_socket_dir
        self.durable = durable
        self.start_timeout = start_timeout
        self.host = LOOPBACK
        self.bindir = find_bindir()
        self._process: ManagedProcess | None = None
        self._databases: list[tuple[str, str, str]] = []

    # ---- lifecycle -------------------------------------------------------------------------------------------------

    def start(self) -> LocalPostgres:
        if self.running():
            return self
        self._check_socket_path()
        self._prepare_dir(self.data_dir)
        self._prepare_dir(self.socket_dir)
        if not (self.data_dir / "PG_VERSION").exists():
            if any(self.data_dir.iterdir()):
                raise PostgresError(
                    f"{self.data_dir} is not empty and holds no PostgreSQL cluster (no PG_VERSION): "
                    "give an empty or missing directory, or one a previous start created"
                )
            self._new_cluster()
        self._remove_stale_pid_file()
        settings = {
            "listen_addresses": self.host,
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
            "unix_socket_permissions": "0700",
            "max_connections": "50",
            "shared_buffers": "32MB",
            "logging_collector": "off",
            # Dynamic shared memory in files of the data directory (pg_dynshmem), not /dev/shm, where a server killed
            # outright would leave its segments for good.
            "dynamic_shared_memory_type": "mmap",
        }
        if not self.durable:
            settings.update({"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"})
        argv = [str(self.bindir / "postgres"), "-D", str(self.data_dir)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        self._process = ManagedProcess("postgres", self._as_server_user(argv, pdeathsig=True), log_path=self.log_path)
        offset = self._process.log_size()
        self._process.start()
        try:
            self._process.wait_ready(self._accepting, timeout=self.start_timeout)
        except Exception as exc:
            log = self._process.log_since(offset)
            self.stop()
            if "could not bind" in log or "Address already in use" in log:
                raise PostgresError(f"port {self.port} on {self.host} is already in use by another process "
                                    "(address already in use)") from None
            raise PostgresError(f"PostgreSQL did not start: {exc}") from None
        return self

    def running(self) -> bool:
        return self._process is not None and self._process.alive()

    @property
    def process(self) -> ManagedProcess | None:
        """The server's process once started (None before, and after ``stop``)."""
        return self._process

    def stop(self, timeout: float = 10.0) -> None:
        """Fast shutdown (SIGINT: clients are disconnected); SIGKILL for the whole process group after ``timeout``."""
        process = self._process
        if process is None or process.proc is None:
            return
        if process.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.proc.wait(timeout=timeout)
        process.stop(timeout=timeout)  # the rest of the process group, if anything is left
        self._process = None
        release_killed_server_memory(self.data_dir)

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ---- roles, databases, DSNs ------------------------------------------------------------------------------------

    def create_database(self, user: str, password: str, dbname: str) -> str:
        """Create (or re-password) login role ``user`` and database ``dbname`` owned by it; return its TCP DSN."""
        _check_identifier("role name", user)
        _check_identifier("database name", dbname)
        if not password:
            raise PostgresError(f"an empty password was given for role {user!r}: TCP logins need a password")
        import psycopg

        with psycopg.connect(self.admin_conninfo(), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)).fetchone()
            verb = "ALTER" if exists else "CREATE"
            conn.execute(f'{verb} ROLE "{user}" WITH LOGIN PASSWORD {_quote_literal(password)}')  # type: ignore[arg-type]
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone():
                conn.execute(f'CREATE DATABASE "{dbname}" OWNER "{user}"')  # type: ignore[arg-type]
        self._databases.append((user, password, dbname))
        return self.dsn(user, password, dbname)

    def dsn(self, user: str | None = None, password: str | None = None, dbname: str | None = None) -> str:
        """A ``postgresql://`` URL over TCP for ``user``/``password``/``dbname``.

        Without a user: the database most recently made by ``create_database``; if there is none, the superuser over
        the unix socket (the only way it can log in).
        """
        if user is None:
            if not self._databases:
                return self.admin_dsn(dbname or "postgres")
            user, password, last_db = self._databases[-1]
            dbname = dbname or last_db
        auth = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
        return f"postgresql://{auth}@{self.host}:{self.port}/{quote(dbname or user, safe='')}"

    def admin_dsn(self, dbname: str = "postgres") -> str:
        socket_dir = quote(str(self.socket_dir), safe="")
        return f"postgresql://{SUPERUSER}@/{quote(dbname, safe='')}?host={socket_dir}&port={self.port}"

    def admin_conninfo(self, dbname: str = "postgres") -> str:
        return f"host={self.socket_dir} port={self.port} user={SUPERUSER} dbname={dbname} connect_timeout=5"

    def immich_env(
        self, user: str | None = None, password: str | None = None, dbname: str | None = None
    ) -> dict[str, str]:
        """The DB_* environment variables Immich (and its API double) read, for a database made here."""
        if user is None:
            if not self._databases:
                raise PostgresError("no database was created yet: call create_database(user, password, dbname) first")
            user, password, dbname = self._databases[-1]
        return {
            "DB_HOSTNAME": self.host,
            "DB_PORT": str(self.port),
            "DB_USERNAME": user,
            "DB_PASSWORD": password or "",
            "DB_DATABASE_NAME": dbname or user,
        }

    # ---- internals -------------------------------------------------------------------------------------------------

    def _server_account(self) -> pwd.struct_passwd | None:
        """The account the server runs as when we are root (None: run as ourselves)."""
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam(SERVER_USER)
        except KeyError:
            raise PostgresError(
                f"running as root, and there is no {SERVER_USER!r} system user to run PostgreSQL as "
                f"(PostgreSQL refuses to run as root); {INSTALL_HINT}, or run as an ordinary user"
            ) from None

    def _as_server_user(self, argv: list[str], *, pdeathsig: bool = False) -> list[str]:
        account = self._server_account()
        if account is None:
            return argv
        prefix = ["setpriv", f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}", "--init-groups"]
        if not self._reachable_by(account, self.data_dir) or not self._reachable_by(account, self.socket_dir):
            # A parent folder the postgres user cannot enter (e.g. a 0700 temporary folder of root): let the server
            # search folders it does not own rather than loosen the permissions of folders that are not ours.
            prefix += ["--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]
        if pdeathsig:
            prefix += ["--pdeathsig=INT"]
        return [*prefix, "--", *argv]

    @staticmethod
    def _reachable_by(account: pwd.struct_passwd, path: Path) -> bool:
        groups = set(os.getgrouplist(account.pw_name, account.pw_gid))
        for parent in path.parents:
            try:
                st = parent.stat()
            except OSError:
                return False
            if st.st_uid == account.pw_uid:
                bit = stat.S_IXUSR
            elif st.st_gid in groups:
                bit = stat.S_IXGRP
            else:
                bit = stat.S_IXOTH
            if not st.st_mode & bit:
                return False
        return True

    def _prepare_dir(self, path: Path) -> None:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PostgresError(f"cannot create {path}: {exc.strerror}") from None
        account = self._server_account()
        try:
            if account is not None:
                os.chown(path, account.pw_uid, account.pw_gid)
            path.chmod(0o700)
        except OSError as exc:
            raise PostgresError(f"cannot give {path} to the {SERVER_USER} user: {exc.strerror}") from None

    def _check_socket_path(self) -> None:
        socket_path = self.socket_dir / f".s.PGSQL.{self.port}"
        if len(str(socket_path).encode()) > MAX_SOCKET_PATH:
            raise PostgresError(
                f"the unix socket path {socket_path} is longer than {MAX_SOCKET_PATH} bytes: "
                "choose a shorter data directory or pass socket_dir="
            )

    def _new_cluster(self) -> None:
        """A fresh cluster in the empty ``data_dir``: a copy of the machine's template (``postgres_template``), or
        ``initdb`` when there is none yet, whose result becomes the template. A durable server always runs ``initdb``
        (which syncs its files; a copy would not)."""
        if self.durable:
            self._initdb()
            return
        template = postgres_template.template_dir(self.bindir / "postgres", [*INITDB_OPTIONS, PG_HBA])
        if postgres_template.is_complete(template):
            try:
                postgres_template.copy_contents(template, self.data_dir)
                return
            except postgres_template.TemplateError:
                self._empty_data_dir()
        self._initdb()
        postgres_template.publish(self.data_dir, template)

    def _empty_data_dir(self) -> None:
        for child in self.data_dir.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()

    def _initdb(self) -> None:
        argv = [str(self.bindir / "initdb"), "-D", str(self.data_dir), *INITDB_OPTIONS]
        if not self.durable:
            argv.append("--no-sync")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            result = subprocess.run(self._as_server_user(argv), stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, timeout=120, check=False)
        if result.returncode != 0:
            raise PostgresError(f"initdb failed for {self.data_dir} (exit {result.returncode}); see {self.log_path}")
        (self.data_dir / "pg_hba.conf").write_text(PG_HBA)
        account = self._server_account()
        if account is not None:
            os.chown(self.data_dir / "pg_hba.conf", account.pw_uid, account.pw_gid)

    def _remove_stale_pid_file(self) -> None:
        """A server killed without a shutdown leaves postmaster.pid behind; remove it when its process is gone."""
        pid_file = self.data_dir / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            release_killed_server_memory(self.data_dir)
            pid_file.unlink(missing_ok=True)
            return
        except PermissionError:
            pass
        raise PostgresError(f"a PostgreSQL server (pid {pid}) is already running on {self.data_dir}: stop it first")

    def _accepting(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(self.admin_conninfo(), connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.OperationalError:
            return False

    def query(self, sql: str, params: Any = None, dbname: str = "postgres") -> list[tuple[Any, ...]]:
        """Run one statement as the superuser and return its rows (empty for statements without a result)."""
        import psycopg

        with psycopg.connect(self.admin_conninfo(dbname), autocommit=True) as conn:
            cur = conn.execute(sql, params)  # type: ignore[arg-type]
            return cur.fetchall() if cur.description else []


__all__ = ["LocalPostgres", "PostgresError", "PostgresNotInstalled", "find_bindir"]
