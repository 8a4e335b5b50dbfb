"""The environment the API double reads: the same variables as the Immich server, plus IMMICH_DOUBLE_VERSION."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from immich_conformance.versions import IMMICH_VERSION

FAULTS = ("drop-one-asset-on-upgrade", "fail-migration-on-upgrade", "log-migration-error-on-upgrade",
          "drop-album-members-on-upgrade")

_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:-[0-9A-Za-z]+(?:\.(\d+))?)?$")
_TRUE = {"true", "1", "yes", "on"}
VERBOSE = 5
# IMMICH_LOG_LEVEL, as Immich's logger has them (default log); request lines are debug.
LOG_LEVELS = {"verbose": VERBOSE, "debug": logging.DEBUG, "log": logging.INFO, "warn": logging.WARNING,
              "error": logging.ERROR, "fatal": logging.CRITICAL}
# Seconds from an answer to the background job it queued (measured on Immich v3.0.3: a duplicate's copy is removed
# ~20 ms after the 200). IMMICH_DOUBLE_JOB_DELAY may widen it, never shorten it.
REAL_JOB_DELAY = 0.02


class ConfigError(ValueError):
    """An environment variable has a value the server cannot use (exit code 2)."""


class LogLevelError(ConfigError):
    """IMMICH_LOG_LEVEL is not one of Immich's levels, written as Immich has them (lower case): Immich exits 1."""


@dataclass(frozen=True)
class ServerVersion:
    major: int
    minor: int
    patch: int
    prerelease: int | None = None

    @classmethod
    def parse(cls, text: str, *, variable: str = "IMMICH_DOUBLE_VERSION") -> ServerVersion:
        match = _VERSION.match(text.strip())
        if not match:
            raise ConfigError(f"{variable}={text!r} is not a release version: use the form v3.0.3 (or 3.1.0-rc.1)")
        major, minor, patch, pre = match.groups()
        return cls(int(major), int(minor), int(patch), int(pre) if pre is not None else None)

    def as_dto(self) -> dict[str, int | None]:
        return {"major": self.major, "minor": self.minor, "patch": self.patch, "prerelease": self.prerelease}

    def at_least(self, since: tuple[int, int, int]) -> bool:
        """Whether this release has what came in release ``since`` (major, minor, patch)."""
        return (self.major, self.minor, self.patch) >= since

    def __str__(self) -> str:
        suffix = f"-rc.{self.prerelease}" if self.prerelease is not None else ""
        return f"v{self.major}.{self.minor}.{self.patch}{suffix}"


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    media_location: Path
    db_conninfo: dict[str, str]
    db_where: str
    redis_where: str
    version: ServerVersion
    ignore_mount_check_errors: bool
    db_wait_seconds: float
    fault: str | None = None
    log_level: int = logging.INFO
    job_delay: float = REAL_JOB_DELAY

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        port = _port(env, "IMMICH_PORT", 2283)
        media = env.get("IMMICH_MEDIA_LOCATION") or "/data"
        if not media.startswith("/"):
            raise ConfigError(f"IMMICH_MEDIA_LOCATION={media!r} must be absolute (e.g. /data)")
        conninfo, where = _database(env)
        redis_where = f"{env.get('REDIS_HOSTNAME') or 'redis'}:{env.get('REDIS_PORT') or '6379'}"
        try:
            db_wait = float(env.get("IMMICH_DOUBLE_DB_WAIT") or "10")
        except ValueError:
            raise ConfigError("IMMICH_DOUBLE_DB_WAIT must be a number of seconds") from None
        job_delay = _job_delay(env)
        fault = env.get("IMMICH_DOUBLE_FAULT") or None
        if fault is not None and fault not in FAULTS:
            raise ConfigError(f"IMMICH_DOUBLE_FAULT={fault!r} is not a known fault: {', '.join(FAULTS)}")
        level = env.get("IMMICH_LOG_LEVEL") or "log"
        if level not in LOG_LEVELS:
            raise LogLevelError(f"IMMICH_LOG_LEVEL={env.get('IMMICH_LOG_LEVEL')!r} is not a log level: "
                              f"{', '.join(LOG_LEVELS)}")
        return cls(
            log_level=LOG_LEVELS[level],
            job_delay=job_delay,
            fault=fault,
            host=env.get("IMMICH_HOST") or "0.0.0.0",
            port=port,
            media_location=Path(media.rstrip("/") or "/"),
            db_conninfo=conninfo,
            db_where=where,
            redis_where=redis_where,
            version=ServerVersion.parse(env.get("IMMICH_DOUBLE_VERSION") or IMMICH_VERSION),
            ignore_mount_check_errors=(env.get("IMMICH_IGNORE_MOUNT_CHECK_ERRORS") or "").lower() in _TRUE,
            db_wait_seconds=db_wait,
        )


def _job_delay(env: Mapping[str, str]) -> float:
    raw = env.get("IMMICH_DOUBLE_JOB_DELAY") or str(REAL_JOB_DELAY)
    try:
        delay = float(raw)
    except ValueError:
        delay = -1.0
    if not REAL_JOB_DELAY <= delay <= 60:
        raise ConfigError(f"IMMICH_DOUBLE_JOB_DELAY={raw!r} must be a number of seconds from {REAL_JOB_DELAY} "
                          "(Immich's own delay; the double is never quicker) to 60")
    return delay


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name) or str(default)
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ConfigError(f"{name}={raw!r} is not a TCP port (1-65535)")
    return int(raw)


def _database(env: Mapping[str, str]) -> tuple[dict[str, str], str]:
    url = env.get("DB_URL")
    if url:
        parts = urlsplit(url)
        if parts.scheme not in {"postgres", "postgresql"}:
            raise ConfigError("DB_URL must be a postgresql:// URL")
        return {"conninfo": url}, f"{parts.hostname}:{parts.port or 5432}/{parts.path.lstrip('/')}"
    host = env.get("DB_HOSTNAME") or "database"
    port = str(_port(env, "DB_PORT", 5432))
    name = env.get("DB_DATABASE_NAME") or "immich"
    info = {
        "host": host,
        "port": port,
        "user": env.get("DB_USERNAME") or "postgres",
        "password": env.get("DB_PASSWORD") or "postgres",
        "dbname": name,
    }
    return info, f"{host}:{port}/{name}"
