"""The embedded default target: the stack's components started on this machine, on free 127.0.0.1 ports.

- the origin proxy: the real Envoy with stack/base/origin-proxy's start.sh and envoy.yaml, unchanged;
- the Cloudflare edge stand-in in front of it (public hostname, Access, service tokens, the team's JWKS over TLS);
- the Immich API double behind it, reading Immich's environment, its library on a sandbox "NAS" folder;
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
import tempfile
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import httpx

from .. import REPO_ROOT, STACK_DIR
from ..access_keys import KeyRing, jwks_url_for
from ..limits import SERVICE_TOKEN_ID_HEADER, SERVICE_TOKEN_SECRET_HEADER
from ..origin_proxy import OriginProxy, ProxySettings
from ..postgres import LocalPostgres
from ..procs import LOOPBACK, ManagedProcess, free_port, port_open
from ..tls import write_server_files
from .base import Endpoint, LogMarks, Target
from .bootstrap import bootstrap_user

# .test never resolves: a client that follows the Access login redirect cannot leave the machine.
TEAM_DOMAIN = "conformance-team.cloudflareaccess.test"
PUBLIC_HOSTNAME = "photos.conformance.test"
START_TIMEOUT = 30.0


class SandboxError(RuntimeError):
    """The sandbox cannot start as asked."""


class Sandbox(Target):
    name = "sandbox"
    public_hostname = PUBLIC_HOSTNAME
    team_domain = TEAM_DOMAIN

    def __init__(self, workdir: Path | None = None, *, keep: bool = False,
                 progress: Callable[[str], None] | None = None) -> None:
        self.keep = keep
        if workdir is None:
            workdir = Path(tempfile.mkdtemp(prefix="immich-sandbox-"))
        elif workdir.exists() and any(workdir.iterdir()):
            raise SandboxError(f"the sandbox folder {workdir} is not empty: give a new or empty folder "
                               "(the sandbox removes what it puts there when it stops)")
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir.resolve()
        self.workdir.chmod(0o755)  # the PostgreSQL server runs as its own user and must reach its folder
        self._progress = progress or (lambda message: None)
        self.aud = secrets.token_hex(32)
        self.nas = self.workdir / "nas"
        self.internal_drive = self.workdir / "internal-drive"
        self.logs = self.workdir / "logs"
        self.media_location = PurePosixPath(self.nas)
        self._processes: dict[str, ManagedProcess] = {}
        self._stoppers: list[Callable[[], None]] = []
        self._service_token = {"client_id": f"{secrets.token_hex(16)}.access", "client_secret": secrets.token_hex(32)}
        self._api_key = ""
        self._started = 0.0

    # --- lifecycle -------------------------------------------------------------------------------------------------
    def _start(self) -> None:
        self._started = time.monotonic()
        for folder in (self.nas, self.internal_drive, self.logs):
            folder.mkdir(parents=True, exist_ok=True)
        ports = {name: free_port() for name in ("edge", "team", "immich", "postgres")}
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
            ),
            self.workdir / "origin-proxy",
        )
        self.proxy.process.log_path = self.logs / "origin-proxy.log"
        self._processes["origin-proxy"] = self.proxy.process
        self._stoppers.append(self.proxy.stop)
        edge_config = self.workdir / "edge.json"
        edge_config.write_text(json.dumps({
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

        # Unix socket paths are limited to 107 bytes: the socket gets a short folder of its own, whatever the workdir.
        socket_dir = Path(tempfile.mkdtemp(prefix="icpg-", dir="/tmp"))
        socket_dir.chmod(0o755)
        self._stoppers.append(lambda: shutil.rmtree(socket_dir, ignore_errors=True))
        postgres = LocalPostgres(self.internal_drive / "postgres", ports["postgres"], self.logs / "postgres.log",
                                 socket_dir=socket_dir / "s")
        self._stoppers.append(postgres.stop)
        postgres.start()
        postgres.create_database("immich", secrets.token_hex(16), "immich")
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
        immich = self._launch("immich-server", [sys.executable, "-m", "immich_conformance.double"], env=immich_env)
        self._lan = Endpoint(f"http://{LOOPBACK}:{ports['immich']}")
        self._external = Endpoint(f"http://{LOOPBACK}:{ports['edge']}", {"Host": PUBLIC_HOSTNAME})
        self._origin = Endpoint(self.proxy.url, {"Host": PUBLIC_HOSTNAME})

        edge.wait_ready(lambda: port_open(ports["edge"]) and port_open(ports["team"]), timeout=START_TIMEOUT)
        self.proxy.wait_ready(START_TIMEOUT)
        immich.wait_ready(lambda: httpx.get(f"{self._lan.url}/api/server/ping", timeout=1).status_code == 200,
                          timeout=START_TIMEOUT)
        self._progress(f"edge on {self._external.url}, origin proxy on {self.proxy.url}, Immich on {self._lan.url}")
        self._api_key = bootstrap_user(self._lan)
        self._progress(f"sandbox ready in {time.monotonic() - self._started:.1f}s (work folder {self.workdir})")

    def _launch(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> ManagedProcess:
        process = ManagedProcess(name, argv, log_path=self.logs / f"{name}.log", env=env, cwd=REPO_ROOT)
        self._processes[name] = process
        self._stoppers.append(process.stop)
        return process.start()

    def close(self) -> None:
        while self._stoppers:
            stop = self._stoppers.pop()
            try:
                stop()
            except Exception as exc:  # noqa: BLE001 - keep stopping the rest
                print(f"sandbox: stopping a component failed: {exc}", file=sys.stderr)
        if not self.keep:
            for child in self.workdir.iterdir() if self.workdir.exists() else ():
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
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
