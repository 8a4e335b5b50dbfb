"""Where the load test sends its requests, and with which credentials.

Two sources: the embedded sandbox (no ``--host``), or a cluster or live deployment described by ``--host`` and the
environment variables below. Workers of a distributed run never read either: the master sends them its
``TargetSettings`` (see ``loadtests/upload.py``).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from immich_conformance.limits import SERVICE_TOKEN_ID_HEADER, SERVICE_TOKEN_SECRET_HEADER
from immich_conformance.nas_health import nas_problem
from immich_conformance.targets import Endpoint, LogMarks, Target, TargetUnsupported
from immich_conformance.targets.base import IMMICH_MEDIA_LOCATION
from immich_conformance.targets.credentials import API_KEY_ENV, TOKEN_ID_ENV, TOKEN_SECRET_ENV, secret

ENV_LAN_URL = "IMMICH_CONFORMANCE_LAN_URL"
ENV_EXTERNAL_URL = "IMMICH_CONFORMANCE_EXTERNAL_URL"
ENV_PUBLIC_HOSTNAME = "IMMICH_CONFORMANCE_PUBLIC_HOSTNAME"
# The secrets go by the names every command of the suite reads (immich_conformance.targets.credentials).
ENV_API_KEY = API_KEY_ENV
ENV_TOKEN_ID = TOKEN_ID_ENV
ENV_TOKEN_SECRET = TOKEN_SECRET_ENV
ENV_NAS_PATH = "IMMICH_CONFORMANCE_NAS_PATH"
ENV_MEDIA_LOCATION = "IMMICH_CONFORMANCE_MEDIA_LOCATION"

ENVIRONMENT_HELP = f"""\
A target other than the embedded sandbox is described by --host and these environment variables:
  --host / {ENV_LAN_URL}   the LAN path: Immich through the NodePort, e.g. http://192.168.1.20:30283
  {ENV_EXTERNAL_URL}       the public path: the Cloudflare hostname (or the edge in front of a test cluster)
  {ENV_PUBLIC_HOSTNAME}    the Host header of the public path (default: the external URL's host name)
  {ENV_API_KEY}            an Immich API key with the "all" permission
  {ENV_TOKEN_ID}, {ENV_TOKEN_SECRET}   an Access service token allowed into the application
  {ENV_NAS_PATH}           optional: where this machine reads the NAS library (Immich's media location)
  {ENV_MEDIA_LOCATION}     Immich's IMMICH_MEDIA_LOCATION on the target (default {IMMICH_MEDIA_LOCATION})
The external URL and the service token are needed when --external-weight, --browse-weight or --oversize-weight is
above 0. Requests go to these addresses only."""


class SettingsError(Exception):
    """The target's settings are missing or unusable; the message says which and how to fix them."""


def _check_url(name: str, url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(f"{name} must be an http:// or https:// URL with a host, not {url!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise SettingsError(f"{name} must name the server only (scheme, host, port), not a path: {url!r}")
    return f"{parts.scheme}://{parts.netloc}"


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class TargetSettings:
    """What a user of the load test needs: both paths' endpoints and the credentials (sent master -> workers)."""

    lan: Endpoint
    external: Endpoint | None
    api_key: str
    service_token_headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_target(cls, target: Target, *, external: bool = True) -> TargetSettings:
        return cls(
            lan=target.lan,
            external=target.external if external else None,
            api_key=target.api_key,
            service_token_headers=dict(target.service_token_headers) if external else {},
        )

    def to_message(self) -> dict[str, Any]:
        return {
            "lan": {"url": self.lan.url, "headers": dict(self.lan.headers)},
            "external": {"url": self.external.url, "headers": dict(self.external.headers)} if self.external else None,
            "api_key": self.api_key,
            "service_token_headers": dict(self.service_token_headers),
        }

    @classmethod
    def from_message(cls, data: Mapping[str, Any]) -> TargetSettings:
        external = data.get("external")
        return cls(
            lan=Endpoint(data["lan"]["url"], dict(data["lan"]["headers"])),
            external=Endpoint(external["url"], dict(external["headers"])) if external else None,
            api_key=data["api_key"],
            service_token_headers=dict(data["service_token_headers"]),
        )

    @property
    def urls(self) -> list[str]:
        return [self.lan.url] + ([self.external.url] if self.external else [])

    def describe(self) -> str:
        text = f"LAN {self.lan.url}"
        if self.external:
            host = self.external.headers.get("Host")
            text += f", external {self.external.url}" + (f" (Host: {host})" if host else "")
        return text


class ConfiguredTarget(Target):
    """A cluster or live deployment known only by its addresses and credentials (no logs, no signing keys)."""

    name = "configured"
    team_domain = ""
    aud = ""

    def __init__(self, *, lan_url: str, external_url: str | None, public_hostname: str, api_key: str,
                 token_id: str, token_secret: str, nas_path: Path | None, media_location: PurePosixPath) -> None:
        self._lan = Endpoint(lan_url)
        self._external = Endpoint(external_url, {"Host": public_hostname}) if external_url else None
        self.public_hostname = public_hostname
        self._api_key = api_key
        self._token = {SERVICE_TOKEN_ID_HEADER: token_id, SERVICE_TOKEN_SECRET_HEADER: token_secret}
        self._nas = nas_path
        self.media_location = media_location

    @classmethod
    def from_environment(cls, host: str, environ: Mapping[str, str] = os.environ, *,
                         needs_external: bool = True) -> ConfiguredTarget:
        problems: list[str] = []

        def url(name: str, value: str) -> str:
            try:
                return _check_url(name, value)
            except SettingsError as exc:
                problems.append(str(exc))
                return value

        lan_env = environ.get(ENV_LAN_URL, "").strip()
        lan = url("--host", host.strip())
        if lan_env and url(ENV_LAN_URL, lan_env) != lan:
            problems.append(f"--host ({host}) and {ENV_LAN_URL} ({lan_env}) disagree: give the LAN URL once")
        api_key = secret(ENV_API_KEY, environ)
        if not api_key:
            problems.append(f"{ENV_API_KEY} is not set (an Immich API key with the \"all\" permission)")
        external = environ.get(ENV_EXTERNAL_URL, "").strip()
        token_id = secret(ENV_TOKEN_ID, environ)
        token_secret = secret(ENV_TOKEN_SECRET, environ)
        if needs_external:
            if not external:
                problems.append(f"{ENV_EXTERNAL_URL} is not set (the public hostname's URL)")
            if not (token_id and token_secret):
                problems.append(f"{ENV_TOKEN_ID} and {ENV_TOKEN_SECRET} must both be set (an Access service token)")
        external = url(ENV_EXTERNAL_URL, external) if external else ""
        public_hostname = environ.get(ENV_PUBLIC_HOSTNAME, "").strip() or (urlsplit(external).hostname or "")
        nas_text = environ.get(ENV_NAS_PATH, "").strip()
        nas = Path(nas_text) if nas_text else None
        if nas is not None and not nas.is_dir():
            problems.append(f"{ENV_NAS_PATH}={nas_text} is not a folder this machine can read")
        media = PurePosixPath(environ.get(ENV_MEDIA_LOCATION, "").strip() or str(IMMICH_MEDIA_LOCATION))
        if not media.is_absolute():
            problems.append(f"{ENV_MEDIA_LOCATION} must be an absolute path, not {media}")
        if problems:
            raise SettingsError("the target's settings are incomplete:\n  - " + "\n  - ".join(problems)
                                + "\n\n" + ENVIRONMENT_HELP)
        return cls(lan_url=lan, external_url=external if needs_external else None, public_hostname=public_hostname,
                   api_key=api_key, token_id=token_id, token_secret=token_secret, nas_path=nas,
                   media_location=media)

    @property
    def lan(self) -> Endpoint:
        return self._lan

    @property
    def external(self) -> Endpoint:
        if self._external is None:
            raise TargetUnsupported(f"no external URL: set {ENV_EXTERNAL_URL}")
        return self._external

    @property
    def service_token_headers(self) -> dict[str, str]:
        return dict(self._token)

    @property
    def api_key(self) -> str:
        return self._api_key

    @property
    def nas_root(self) -> Path:
        if self._nas is None:
            raise TargetUnsupported(f"no NAS path: set {ENV_NAS_PATH} to read the library from this machine")
        return self._nas

    @property
    def has_nas(self) -> bool:
        return self._nas is not None

    def storage_problem(self, marks: LogMarks | None = None) -> str | None:
        """The NAS's filesystem read-only or full, when this machine reads it (nothing is written there)."""
        return nas_problem(self._nas, probe=False) if self._nas is not None else None

    def close(self) -> None:
        """Nothing was started here."""
