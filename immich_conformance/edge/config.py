"""The edge stand-in's configuration: one JSON file, checked field by field with messages that say how to fix it."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from immich_conformance.limits import MAX_BODY_BYTES

DEFAULT_SESSION_SECONDS = 24 * 3600
DEFAULT_ORIGIN_READ_TIMEOUT = 100.0

CONFIG_HELP = f"""\
The configuration is a JSON object:

  listen                     "127.0.0.1:PORT"  the public application listener (plain HTTP on loopback); it stands
                             for https://<public_hostname> and expects "Host: <public_hostname>"
  public_hostname            "photos.example.test"  the application's public hostname
  origin_url                 "http://127.0.0.1:PORT"  where the tunnel delivers requests (the origin proxy)
  team_domain                "team.cloudflareaccess.com"  the Access team domain (issuer https://<team_domain>)
  aud                        the Access application's AUD tag
  key_ring_file              path of the team's key ring (KeyRing.save format); re-read whenever it changes
  service_tokens             [{{"client_id": ..., "client_secret": ..., "name": ...}}, ...]  may be empty
  team_listen                "127.0.0.1:PORT"  HTTPS listener for the team domain (JWKS and login page)
  team_tls_cert              PEM certificate for team_domain (see python -m immich_conformance.tls)
  team_tls_key               PEM private key of that certificate
optional:
  max_body_bytes             request body limit, default {MAX_BODY_BYTES} (413 above it)
  session_seconds            lifetime of the JWTs the edge issues, default {DEFAULT_SESSION_SECONDS}
  strict_service_token_auth  true (default): a bad service-token pair gets 401 and a valid one ignores any cookie;
                             false: a bad pair falls back to the login flow, a valid one also sets CF_Authorization
  service_auth_401_redirect  false (default): requests without credentials are redirected to the login page;
                             true: they get 401 instead
  origin_read_timeout        seconds to wait for the origin's answer, default {DEFAULT_ORIGIN_READ_TIMEOUT:g} (then 524)
  colo                       three letters ending every Cf-Ray value, default "SJC"
  log_file                   append the log here instead of standard output
Relative paths are taken from the configuration file's directory.
"""

_REQUIRED = (
    "listen",
    "public_hostname",
    "origin_url",
    "team_domain",
    "aud",
    "key_ring_file",
    "service_tokens",
    "team_listen",
    "team_tls_cert",
    "team_tls_key",
)
_OPTIONAL = (
    "max_body_bytes",
    "session_seconds",
    "strict_service_token_auth",
    "service_auth_401_redirect",
    "origin_read_timeout",
    "colo",
    "log_file",
)


class ConfigError(ValueError):
    """The configuration cannot be used; the message says what is wrong, where, and how to fix it."""


@dataclass(frozen=True)
class ServiceToken:
    client_id: str
    client_secret: str
    name: str


@dataclass(frozen=True)
class EdgeConfig:
    listen_host: str
    listen_port: int
    public_hostname: str
    origin_url: str
    team_domain: str
    aud: str
    key_ring_file: Path
    service_tokens: tuple[ServiceToken, ...]
    team_listen_host: str
    team_listen_port: int
    team_tls_cert: Path
    team_tls_key: Path
    max_body_bytes: int = MAX_BODY_BYTES
    session_seconds: int = DEFAULT_SESSION_SECONDS
    strict_service_token_auth: bool = True
    service_auth_401_redirect: bool = False
    origin_read_timeout: float = DEFAULT_ORIGIN_READ_TIMEOUT
    colo: str = "SJC"
    log_file: Path | None = None
    source: Path | None = field(default=None, compare=False)

    @property
    def issuer(self) -> str:
        return f"https://{self.team_domain}"


def _where(source: Path | None, key: str) -> str:
    return f"{source}: {key!r}" if source else repr(key)


def _loopback_address(value: Any, key: str, source: Path | None) -> tuple[str, int]:
    where = _where(source, key)
    if not isinstance(value, str) or ":" not in value:
        raise ConfigError(f"{where} must be \"127.0.0.1:PORT\", got {value!r}")
    host, _, port_text = value.rpartition(":")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(f"{where}: {host!r} is not an IP address; use a loopback address such as 127.0.0.1") from None
    if not address.is_loopback:
        raise ConfigError(f"{where}: {host} is not a loopback address; the edge stand-in listens on 127.0.0.0/8 only")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"{where}: {port_text!r} is not a TCP port (1-65535)")
    return host, int(port_text)


def _string(doc: dict[str, Any], key: str, source: Path | None) -> str:
    value = doc[key]
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{_where(source, key)} must be a non-empty string, got {value!r}")
    return value.strip()


def _hostname(doc: dict[str, Any], key: str, source: Path | None) -> str:
    value = _string(doc, key, source).lower()
    if "/" in value or ":" in value or " " in value:
        raise ConfigError(f"{_where(source, key)} must be a bare host name (no scheme, port or path), got {value!r}")
    return value


def _path(doc: dict[str, Any], key: str, source: Path | None, *, must_exist: bool) -> Path:
    path = Path(_string(doc, key, source))
    if not path.is_absolute() and source is not None:
        path = source.parent / path
    if must_exist and not path.is_file():
        raise ConfigError(f"{_where(source, key)}: file {path} does not exist")
    return path


def _bool(doc: dict[str, Any], key: str, source: Path | None, default: bool) -> bool:
    value = doc.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{_where(source, key)} must be true or false, got {value!r}")
    return value


def _positive_int(doc: dict[str, Any], key: str, source: Path | None, default: int) -> int:
    value = doc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{_where(source, key)} must be a positive whole number, got {value!r}")
    return value


def _service_tokens(doc: dict[str, Any], source: Path | None) -> tuple[ServiceToken, ...]:
    where = _where(source, "service_tokens")
    items = doc["service_tokens"]
    if not isinstance(items, list):
        raise ConfigError(f"{where} must be a list of {{\"client_id\", \"client_secret\", \"name\"}} objects")
    tokens: list[ServiceToken] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        if not isinstance(item, dict) or set(item) != {"client_id", "client_secret", "name"}:
            raise ConfigError(f"{where}[{i}] must have exactly the keys client_id, client_secret and name")
        if not all(isinstance(item[k], str) and item[k] for k in item):
            raise ConfigError(f"{where}[{i}]: client_id, client_secret and name must be non-empty strings")
        if item["client_id"] in seen:
            raise ConfigError(f"{where}[{i}]: client_id {item['client_id']!r} appears twice; client ids are unique")
        seen.add(item["client_id"])
        tokens.append(ServiceToken(item["client_id"], item["client_secret"], item["name"]))
    return tuple(tokens)


def parse_config(doc: Any, source: Path | None = None) -> EdgeConfig:
    """Check a configuration document and turn it into an EdgeConfig (ConfigError if it is not usable)."""
    if not isinstance(doc, dict):
        raise ConfigError(f"{source or 'the configuration'} must hold a JSON object")
    unknown = sorted(set(doc) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise ConfigError(f"{source or 'the configuration'}: unknown key(s) {', '.join(unknown)}; "
                          f"known keys are {', '.join(_REQUIRED + _OPTIONAL)}")
    missing = [k for k in _REQUIRED if k not in doc]
    if missing:
        raise ConfigError(f"{source or 'the configuration'}: missing required key(s) {', '.join(missing)}")

    listen_host, listen_port = _loopback_address(doc["listen"], "listen", source)
    team_host, team_port = _loopback_address(doc["team_listen"], "team_listen", source)
    if (listen_host, listen_port) == (team_host, team_port):
        raise ConfigError(f"{_where(source, 'team_listen')} must differ from 'listen' ({doc['listen']})")

    origin_url = _string(doc, "origin_url", source).rstrip("/")
    parts = urlsplit(origin_url)
    if parts.scheme != "http" or not parts.hostname or parts.path or parts.query:
        raise ConfigError(f"{_where(source, 'origin_url')} must look like http://127.0.0.1:PORT "
                          f"(plain HTTP, no path), got {origin_url!r}")
    try:
        origin_is_loopback = ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        origin_is_loopback = parts.hostname == "localhost"
    if not origin_is_loopback:
        raise ConfigError(f"{_where(source, 'origin_url')}: {parts.hostname} is not a loopback address; "
                          "the origin must be on 127.0.0.0/8")

    timeout = doc.get("origin_read_timeout", DEFAULT_ORIGIN_READ_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ConfigError(f"{_where(source, 'origin_read_timeout')} must be a positive number of seconds")
    colo = doc.get("colo", "SJC")
    if not isinstance(colo, str) or len(colo) != 3 or not colo.isalpha() or not colo.isupper():
        raise ConfigError(f"{_where(source, 'colo')} must be three capital letters such as \"SJC\", got {colo!r}")

    log_file = _path(doc, "log_file", source, must_exist=False) if doc.get("log_file") is not None else None

    return EdgeConfig(
        listen_host=listen_host,
        listen_port=listen_port,
        public_hostname=_hostname(doc, "public_hostname", source),
        origin_url=origin_url,
        team_domain=_hostname(doc, "team_domain", source),
        aud=_string(doc, "aud", source),
        key_ring_file=_path(doc, "key_ring_file", source, must_exist=True),
        service_tokens=_service_tokens(doc, source),
        team_listen_host=team_host,
        team_listen_port=team_port,
        team_tls_cert=_path(doc, "team_tls_cert", source, must_exist=True),
        team_tls_key=_path(doc, "team_tls_key", source, must_exist=True),
        max_body_bytes=_positive_int(doc, "max_body_bytes", source, MAX_BODY_BYTES),
        session_seconds=_positive_int(doc, "session_seconds", source, DEFAULT_SESSION_SECONDS),
        strict_service_token_auth=_bool(doc, "strict_service_token_auth", source, True),
        service_auth_401_redirect=_bool(doc, "service_auth_401_redirect", source, False),
        origin_read_timeout=float(timeout),
        colo=colo,
        log_file=log_file,
        source=source,
    )


def load_config(path: Path) -> EdgeConfig:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read the configuration file {path}: {exc.strerror or exc}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    return parse_config(doc, path.resolve())
