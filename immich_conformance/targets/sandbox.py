"""The embedded default target: the stack's components started on this machine, on free 127.0.0.1 ports.

- the origin proxy: the real Envoy with stack/base/origin-proxy's start.sh and envoy.yaml, unchanged;
- the Cloudflare edge stand-in in front of it (public hostname, Access, service tokens, the team's JWKS over TLS);
- the Immich API double behind it, reading Immich's environment, its library on a sandbox "NAS" folder (or another
  Immich server from a command, with a Redis of its own: ``server=``, see ``immich_server``);
- a real PostgreSQL for the double, its data on a sandbox "internal drive" folder.
Everything lives in one work folder and is stopped by ``close()`` (also when start-up fails half way).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from .. import REPO_ROOT, STACK_DIR, nas_health, run_folders
from ..access_keys import KeyRing, jwks_url_for
from ..conditions import ports_answer, url_answers_ok
from ..limits import SERVICE_TOKEN_ID_HEADER, SERVICE_TOKEN_SECRET_HEADER
from ..origin_proxy import OriginProxy, ProxySettings
from ..postgres import LocalPostgres
from ..procs import LOOPBACK, ManagedProcess, ProcessDied, WaitTimeout, free_ports, port_taken
from ..tls import write_server_files
from . import sandbox_nas
from .base import Endpoint, LogMarks, Target
from .bootstrap import bootstrap_user
from .immich_server import ServerCommand, ServerCommandError, prepare_database, redis_answers, redis_argv
from .sandbox_nas import NasFolderError
from .supervision import Death, Supervisor

# .test never resolves: a client that follows the Access login redirect cannot leave the machine.
TEAM_DOMAIN = "conformance-team.cloudflareaccess.test"
PUBLIC_HOSTNAME = "photos.conformance.test"
START_TIMEOUT = 30.0
PORT_ATTEMPTS = 3  # starts on new ports when another process takes one the sandbox chose
WORKDIR_PREFIX = "immich-sandbox-"  # a work folder of the sandbox's own, in the temporary folder
# Unix socket paths are limited to 107 bytes: the database's socket gets a short folder of its own, whatever the
# work folder.
SOCKET_PREFIX, SOCKET_PARENT = "icpg-", Path("/tmp")
SERVER_START_TIMEOUT = 120.0  # another Immich server (--immich-server-cmd): real Immich's first start migrates


class SandboxError(RuntimeError):
    """The sandbox cannot start as asked."""


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to a file only its owner can read (mode 0600 from its creation on)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    path.chmod(0o600)


def _check_workdir(workdir: Path) -> None:
    """A new or empty folder the sandbox can write to, made when missing; SandboxError names what is wrong."""
    if workdir.exists() and not workdir.is_dir():
        raise SandboxError(f"the sandbox folder {workdir} is a file, not a folder: give a new or empty folder")
    if workdir.is_dir() and any(workdir.iterdir()):
        raise SandboxError(f"the sandbox folder {workdir} is not empty: give a new or empty folder "
                           "(the sandbox removes what it puts there when it stops)")
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        probe = workdir / ".write-test"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise SandboxError(f"the sandbox folder {workdir} cannot be written ({exc.strerror}): give a folder you "
                           "can write to") from None


class Sandbox(Target):
    name = "sandbox"
    public_hostname = PUBLIC_HOSTNAME
    team_domain = TEAM_DOMAIN

    def __init__(self, workdir: Path | None = None, *, keep: bool = False,
                 progress: Callable[[str], None] | None = None, server: ServerCommand | None = None,
                 nas: Path | None = None) -> None:
        self.keep = keep
        self.server = server
        """Another Immich server to run in the double's place (None: the double)."""
        self.notes: list[str] = []
        """One line each: what this machine lacks that the server may need (said once the sandbox is up)."""
        self.leftovers_removed = ""
        """What an earlier sandbox left in the given NAS folder and this one removed, in one line (else empty)."""
        try:
            self._given_nas = sandbox_nas.check(nas) if nas is not None else None
            """A NAS folder of the caller's (a mount point), emptied when the sandbox stops: see ``sandbox_nas``."""
        except NasFolderError as exc:
            raise SandboxError(str(exc)) from None
        self._progress = progress or (lambda message: None)
        self._own_workdir = workdir is None
        """The work folder is the sandbox's own (made, marked and removed here), not one the caller gave."""
        run_folders.sweep_and_say(SOCKET_PREFIX, SOCKET_PARENT, self._progress)  # made when the sandbox starts
        if workdir is None:
            workdir = run_folders.fresh(WORKDIR_PREFIX, progress=self._progress)
        else:
            _check_workdir(workdir)
        self.workdir = workdir.resolve()
        self.workdir.chmod(0o755)  # the PostgreSQL server runs as its own user and must reach its folder
        self.aud = secrets.token_hex(32)
        self.nas = self._given_nas or self.workdir / "nas"
        self.internal_drive = self.workdir / "internal-drive"
        self.logs = self.workdir / "logs"
        self.media_location = PurePosixPath(self.nas)
        self._processes: dict[str, ManagedProcess] = {}
        self._stoppers: list[Callable[[], None]] = []
        self._supervisor = Supervisor()
        self._service_token = {"client_id": f"{secrets.token_hex(16)}.access", "client_secret": secrets.token_hex(32)}
        self._api_key = ""
        self._started = 0.0
        self.database_dsn = ""

    # --- lifecycle -------------------------------------------------------------------------------------------------
    def _start(self) -> None:
        """Start every component on ports chosen now; when another process takes one of them before its component
        binds it (ports are chosen, then bound), start again on new ports, at most ``PORT_ATTEMPTS`` times."""
        self._started = time.monotonic()
        if self._given_nas is not None:
            sandbox_nas.claim(self._given_nas, self._said_leftovers)
        for attempt in range(1, PORT_ATTEMPTS + 1):
            try:
                self._start_once()
                return
            except Exception as exc:
                taken = self._port_taken_line(exc)
                if taken is None:
                    raise
                self._stop_components()
                self._clear_workdir()
                if attempt == PORT_ATTEMPTS:
                    raise SandboxError(
                        f"another process kept taking the ports the sandbox chose: {PORT_ATTEMPTS} starts on new free "
                        f"ports each failed with 'address already in use' (last: {taken}); find what opens many "
                        "loopback ports on this machine, or start again once it is done") from None
                self._progress(f"a port was taken by another process while the sandbox started ({taken}); starting "
                               f"again on new ports (attempt {attempt + 1} of {PORT_ATTEMPTS})")

    def _said_leftovers(self, line: str) -> None:
        self.leftovers_removed = line
        self._progress(line)

    def _port_taken_line(self, exc: BaseException) -> str | None:
        """The line saying a component found its port already in use (from the error or a log), if the start
        failed for that reason."""
        texts = [str(exc)]
        for path in self.log_files().values():
            with contextlib.suppress(OSError):
                texts.append(path.read_text(errors="replace"))
        for text in texts:
            for line in text.splitlines():
                if port_taken(line):
                    return line.strip()[:300]
        return None

    def _stop_components(self) -> None:
        while self._stoppers:
            stop = self._stoppers.pop()
            with contextlib.suppress(Exception):
                stop()
        self._processes.clear()

    def _clear_workdir(self) -> None:
        """Empty the work folder (its mark stays: the folder is still this sandbox's)."""
        for child in self.workdir.iterdir() if self.workdir.exists() else ():
            if child.name == run_folders.MARK:
                continue
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()

    def _start_once(self) -> None:
        for folder in (self.nas, self.internal_drive, self.logs):
            folder.mkdir(parents=True, exist_ok=True)
        names = ("edge", "team", "immich", "postgres", "redis", "proxy", "proxy-health", "proxy-admin")
        ports = dict(zip(names, free_ports(len(names)), strict=True))
        tls = write_server_files(self.workdir / "pki", [TEAM_DOMAIN])
        self.key_ring_file = self.workdir / "access-keys.json"
        KeyRing.generate(TEAM_DOMAIN, count=2).save(self.key_ring_file)

        self.proxy = OriginProxy(
            ProxySettings(
                team_domain=TEAM_DOMAIN,
                aud=self.aud,
                upstream=f"{LOOPBACK}:{ports['immich']}",
                jwks_url=jwks_url_for(f"{TEAM_DOMAIN}:{ports['team']}"),
                jwks_connect=f"{LOOPBACK}:{ports['team']}",
                jwks_ca_file=tls.ca_file,
                listen_port=ports["proxy"],
                health_port=ports["proxy-health"],
                admin_port=ports["proxy-admin"],
            ),
            self.workdir / "origin-proxy",
        )
        self.proxy.process.log_path = self.logs / "origin-proxy.log"
        self._processes["origin-proxy"] = self.proxy.process
        self._stoppers.append(self.proxy.stop)
        edge_config = self.workdir / "edge.json"  # holds the service token's secret: the owner's alone
        write_private(edge_config, json.dumps({
            "listen": f"{LOOPBACK}:{ports['edge']}",
            "public_hostname": PUBLIC_HOSTNAME,
            "origin_url": self.proxy.url,
            "team_domain": TEAM_DOMAIN,
            "aud": self.aud,
            "key_ring_file": str(self.key_ring_file),
            "service_tokens": [{**self._service_token, "name": "conformance-suite"}],
            "team_listen": f"{LOOPBACK}:{ports['team']}",
            "team_tls_cert": str(tls.cert_file),
            "team_tls_key": str(tls.key_file),
        }, indent=2))
        edge = self._launch("edge", [sys.executable, "-m", "immich_conformance.edge", "--config", str(edge_config)])
        self.proxy.launch()

        socket_dir = run_folders.make(SOCKET_PREFIX, SOCKET_PARENT)
        socket_dir.chmod(0o755)
        self._stoppers.append(lambda: shutil.rmtree(socket_dir, ignore_errors=True))
        postgres = LocalPostgres(self.internal_drive / "postgres", ports["postgres"], self.logs / "postgres.log",
                                 socket_dir=socket_dir / "s")
        self._stoppers.append(postgres.stop)
        postgres.start()
        self.database_dsn = postgres.create_database("immich", secrets.token_hex(16), "immich")
        """The double's database (TCP DSN), for tests that break the library behind the API's back."""
        self._progress(f"postgres ready on {LOOPBACK}:{ports['postgres']}")

        immich_env = {
            **os.environ,
            **postgres.immich_env(),
            "IMMICH_HOST": LOOPBACK,
            "IMMICH_PORT": str(ports["immich"]),
            "IMMICH_MEDIA_LOCATION": str(self.nas),
            "IMMICH_LOG_LEVEL": request_log_level(),
            "REDIS_HOSTNAME": LOOPBACK,
        }
        server_argv = [sys.executable, "-m", "immich_conformance.double"]
        if self.server is not None:
            immich_env.update(self._real_server_needs(postgres, ports["redis"]))
            server_argv = self.server.argv
        immich = self._launch("immich-server", server_argv, env=immich_env)
        self._lan = Endpoint(f"http://{LOOPBACK}:{ports['immich']}")
        self._external = Endpoint(f"http://{LOOPBACK}:{ports['edge']}", {"Host": PUBLIC_HOSTNAME})
        self._origin = Endpoint(self.proxy.url, {"Host": PUBLIC_HOSTNAME})

        edge.wait_ready(ports_answer(ports["edge"], ports["team"]), timeout=START_TIMEOUT)
        self.proxy.wait_ready(START_TIMEOUT)
        self._wait_server(immich)
        self._progress(f"edge on {self._external.url}, origin proxy on {self.proxy.url}, Immich on {self._lan.url}")
        self._api_key = bootstrap_user(self._lan)
        self._supervise(postgres)
        self._progress(f"sandbox ready in {time.monotonic() - self._started:.1f}s (work folder {self.workdir})")

    def _real_server_needs(self, postgres: LocalPostgres, redis_port: int) -> dict[str, str]:
        """For another Immich server: a Redis of its own, the database as real Immich wants it, the env file."""
        assert self.server is not None
        redis_dir = self.internal_drive / "redis"
        redis_dir.mkdir(parents=True, exist_ok=True)
        try:
            argv = redis_argv(redis_port, redis_dir)
        except ServerCommandError as exc:
            raise SandboxError(str(exc)) from None
        redis = self._launch("redis", argv)
        try:
            redis.wait_ready(lambda: redis_answers(redis_port), timeout=START_TIMEOUT)
        except (ProcessDied, WaitTimeout) as exc:
            raise SandboxError(f"Redis for the Immich server did not start: {exc}") from None
        self._progress(f"redis ready on {LOOPBACK}:{redis_port}")
        env = prepare_database(postgres, "immich", "immich", self.notes.append)
        return {**env, "REDIS_HOSTNAME": LOOPBACK, "REDIS_PORT": str(redis_port), **self.server.extra_env}

    def _wait_server(self, immich: ManagedProcess) -> None:
        """Until the server answers its ping; another server's failure is one SandboxError naming its command."""
        ping = url_answers_ok(f"{self._lan.url}/api/server/ping")
        if self.server is None:
            immich.wait_ready(ping, timeout=START_TIMEOUT)
            return
        try:
            immich.wait_ready(ping, timeout=SERVER_START_TIMEOUT)
        except (ProcessDied, WaitTimeout):
            code = immich.proc.poll() if immich.proc else None
            how = f"exited with code {code}" if code is not None else \
                f"did not answer {self._lan.url}/api/server/ping within {SERVER_START_TIMEOUT:.0f}s"
            tail = "\n".join(f"  {line}" for line in immich.log_tail(15).splitlines())
            notes = "".join(f"\n  (also: {note})" for note in self.notes)
            raise SandboxError(f"the Immich server `{self.server.shown}` {how}; its last log lines:\n{tail}{notes}") \
                from None

    def _supervise(self, postgres: LocalPostgres) -> None:
        """From now on, a component that exits is a death the scenarios and the sandbox command are told of."""
        for process in [*self._processes.values(), postgres.process]:
            if process is not None:
                self._supervisor.watch(process)
        self._supervisor.start()

    def dead_components(self) -> list[Death]:
        return self._supervisor.deaths()

    def component(self, name: str) -> ManagedProcess:
        """The process of one running component (edge, origin-proxy, immich-server, postgres, redis): for tests that
        break it on purpose."""
        return self._supervisor.watched(name)

    def storage_problem(self, marks: LogMarks | None = None) -> str | None:
        """The NAS folder as it is now (read-only, full), else a write error Immich logged since ``marks``."""
        problem = nas_health.nas_problem(self.nas)
        if problem is None and marks is not None:
            problem = nas_health.log_problem(self.nas, self.logs_since(marks).get("immich-server", ""))
        return problem

    def _launch(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> ManagedProcess:
        process = ManagedProcess(name, argv, log_path=self.logs / f"{name}.log", env=env, cwd=REPO_ROOT)
        self._processes[name] = process
        self._stoppers.append(process.stop)
        return process.start()

    def close(self) -> None:
        self._supervisor.stop()
        while self._stoppers:
            stop = self._stoppers.pop()
            try:
                stop()
            except Exception as exc:  # noqa: BLE001 - keep stopping the rest
                print(f"sandbox: stopping a component failed: {exc}", file=sys.stderr)
        if self._given_nas is not None and not self.keep and (stays := sandbox_nas.empty(self._given_nas)):
            print(f"sandbox: {stays}", file=sys.stderr)
        if self.keep:
            run_folders.unmark(self.workdir)
        elif self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        else:
            self._clear_workdir()
            with contextlib.suppress(OSError):
                self.workdir.rmdir()

    # --- what the scenarios use ------------------------------------------------------------------------------------
    @property
    def origin(self) -> Endpoint:
        return self._origin

    @property
    def service_token_headers(self) -> dict[str, str]:
        return {
            SERVICE_TOKEN_ID_HEADER: self._service_token["client_id"],
            SERVICE_TOKEN_SECRET_HEADER: self._service_token["client_secret"],
        }

    def access_keys(self) -> KeyRing:
        return KeyRing.load(self.key_ring_file)

    @property
    def nas_root(self) -> Path:
        return self.nas

    def sentinel_url(self, component: str) -> str:
        urls = {
            "origin-proxy": f"{self.proxy.url}/api/server/ping",
            "immich-server": f"{self._lan.url}/api/server/ping",
        }
        if component not in urls:
            return super().sentinel_url(component)
        return urls[component]

    def log_files(self) -> dict[str, Path]:
        files = {name: p.log_path for name, p in self._processes.items()}
        files["postgres"] = self.logs / "postgres.log"
        return files

    def log_marks(self) -> LogMarks:
        return {name: path.stat().st_size if path.exists() else 0 for name, path in self.log_files().items()}

    def logs_since(self, marks: LogMarks) -> dict[str, str]:
        out = {}
        for name, path in self.log_files().items():
            try:
                with path.open("rb") as f:
                    f.seek(marks.get(name, 0))
                    out[name] = f.read().decode(errors="replace")
            except FileNotFoundError:
                out[name] = ""
        return out


REQUEST_LOG_PATCH = STACK_DIR / "components" / "request-log" / "immich-server-log-level.yaml"


def request_log_level() -> str:
    """IMMICH_LOG_LEVEL as the test deployments set it (stack/components/request-log): the level at which Immich
    logs each request, which the suite reads."""
    import yaml

    doc = yaml.safe_load(REQUEST_LOG_PATCH.read_text())
    for container in doc["spec"]["template"]["spec"]["containers"]:
        for item in container.get("env", []):
            if item["name"] == "IMMICH_LOG_LEVEL":
                return str(item["value"])
    raise RuntimeError(f"{REQUEST_LOG_PATCH} no longer sets IMMICH_LOG_LEVEL for immich-server")
