"""The live target: a running deployment, checked without harm.

Settings come from a YAML file (``--live-config`` or IMMICH_CONFORMANCE_LIVE_CONFIG); secrets only from the
environment, never from the file, and they are never printed. The suite touches only the assets it creates and
deletes them all; it sends no body over the edge limit to the public hostname unless ``--allow-large-external``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import httpx
import yaml

from ..limits import SERVICE_TOKEN_ID_HEADER, SERVICE_TOKEN_SECRET_HEADER
from .base import Endpoint, Target, TargetUnsupported

API_KEY_ENV = "IMMICH_API_KEY"
TOKEN_ID_ENV = "CF_ACCESS_CLIENT_ID"
TOKEN_SECRET_ENV = "CF_ACCESS_CLIENT_SECRET"

SETTINGS_HELP = f"""\
A live settings file is YAML with these keys (secrets are not among them: they come from the environment):
  lan_url         required  the NodePort on the node's LAN hostname, e.g. http://immich.home.example:30283
  public_url      required  the public hostname behind Cloudflare, e.g. https://photos.example.com
  team_domain     optional  the Access team domain, e.g. myteam.cloudflareaccess.com (the login redirect must go there)
  nas_path        optional  where the NAS library (Immich's /data) is mounted on this machine
  media_location  optional  Immich's IMMICH_MEDIA_LOCATION (default /data)
  side            optional  where the suite runs: lan or internet (checks split-horizon DNS)
  node_address    optional  the node's LAN address (what the public hostname resolves to on the LAN)
  public_connect  optional  host:port to connect to instead of resolving the public hostname (for testing)
Environment: {API_KEY_ENV} (required), {TOKEN_ID_ENV} and {TOKEN_SECRET_ENV} (an Access service token).
"""
_KEYS = {"lan_url", "public_url", "team_domain", "nas_path", "media_location", "side", "node_address",
         "public_connect"}


class LiveSettingsError(ValueError):
    """The live settings are wrong; the message says what and how to fix it."""


@dataclass(frozen=True)
class LiveSettings:
    lan_url: str
    public_url: str
    team_domain: str | None = None
    nas_path: Path | None = None
    media_location: str = "/data"
    side: str | None = None
    node_address: str | None = None
    public_connect: str | None = None

    @classmethod
    def load(cls, path: Path) -> LiveSettings:
        try:
            doc = yaml.safe_load(path.read_text())
        except FileNotFoundError:
            raise LiveSettingsError(f"the live settings file {path} does not exist\n\n{SETTINGS_HELP}") from None
        except yaml.YAMLError as exc:
            raise LiveSettingsError(f"{path} is not valid YAML: {exc}") from None
        if not isinstance(doc, dict):
            raise LiveSettingsError(f"{path} must hold a mapping of settings\n\n{SETTINGS_HELP}")
        unknown = sorted(set(doc) - _KEYS)
        if unknown:
            secretish = [k for k in unknown if any(w in k.lower() for w in ("key", "secret", "token", "password"))]
            hint = (f" Secrets are read from the environment ({API_KEY_ENV}, {TOKEN_ID_ENV}, {TOKEN_SECRET_ENV}), "
                    "not from the file." if secretish else "")
            raise LiveSettingsError(f"{path}: unknown setting(s) {', '.join(unknown)}.{hint}\n\n{SETTINGS_HELP}")
        for key in ("lan_url", "public_url"):
            if not doc.get(key):
                raise LiveSettingsError(f"{path}: {key} is missing\n\n{SETTINGS_HELP}")
            if urlsplit(str(doc[key])).scheme not in ("http", "https"):
                raise LiveSettingsError(f"{path}: {key}={doc[key]!r} is not an http(s) URL")
        if doc.get("side") not in (None, "lan", "internet"):
            raise LiveSettingsError(f"{path}: side={doc['side']!r}: use lan or internet")
        return cls(
            lan_url=str(doc["lan_url"]).rstrip("/"),
            public_url=str(doc["public_url"]).rstrip("/"),
            team_domain=doc.get("team_domain"),
            nas_path=Path(doc["nas_path"]) if doc.get("nas_path") else None,
            media_location=str(doc.get("media_location") or "/data"),
            side=doc.get("side"),
            node_address=doc.get("node_address"),
            public_connect=doc.get("public_connect"),
        )


class LiveTarget(Target):
    name = "live"

    def __init__(self, settings: LiveSettings, *, allow_large_external: bool = False,
                 env: dict[str, str] | None = None) -> None:
        env = dict(os.environ if env is None else env)
        self.settings = settings
        self.allow_large_external = allow_large_external
        self._api_key = env.get(API_KEY_ENV, "")
        if not self._api_key:
            raise LiveSettingsError(f"{API_KEY_ENV} is not set: create an API key in Immich (Account Settings > "
                                    f"API Keys, permission all) and export it as {API_KEY_ENV}")
        self._token = (env.get(TOKEN_ID_ENV, ""), env.get(TOKEN_SECRET_ENV, ""))
        public = urlsplit(settings.public_url)
        self.public_hostname = public.hostname or ""
        self.team_domain = settings.team_domain or ""
        self.aud = ""
        self.media_location = PurePosixPath(settings.media_location)
        if settings.public_connect:
            self._external = Endpoint(f"{public.scheme}://{settings.public_connect}", {"Host": public.netloc})
        else:
            self._external = Endpoint(settings.public_url)
        self._lan = Endpoint(settings.lan_url)

    def _start(self) -> None:
        """Check that Immich accepts the API key before any scenario runs."""
        try:
            response = httpx.get(f"{self._lan.url}/api/users/me", headers={"x-api-key": self._api_key}, timeout=15)
        except httpx.HTTPError as exc:
            raise LiveSettingsError(f"cannot reach Immich at lan_url {self._lan.url}: {exc}") from None
        if response.status_code == 401:
            raise LiveSettingsError(f"Immich at {self._lan.url} refused the API key in {API_KEY_ENV} "
                                    f"({_message(response)}): create a new key (permission all) and export it")
        if response.status_code != 200:
            raise LiveSettingsError(f"Immich at {self._lan.url} answered {response.status_code} for the API key check")

    @property
    def service_token_headers(self) -> dict[str, str]:
        if not all(self._token):
            raise TargetUnsupported(f"no Access service token: export {TOKEN_ID_ENV} and {TOKEN_SECRET_ENV}")
        return {SERVICE_TOKEN_ID_HEADER: self._token[0], SERVICE_TOKEN_SECRET_HEADER: self._token[1]}

    @property
    def nas_root(self) -> Path:
        if self.settings.nas_path is None:
            raise TargetUnsupported("the live settings give no nas_path: the NAS cannot be read from here")
        return self.settings.nas_path

    def split_horizon(self) -> tuple[str, str | None]:
        if self.settings.side is None:
            raise TargetUnsupported("the live settings do not say which side the suite runs on (side: lan|internet)")
        if self.settings.side == "lan" and not self.settings.node_address:
            raise TargetUnsupported("side is lan but the live settings give no node_address to compare with")
        return self.settings.side, self.settings.node_address

    def may_send_over_limit_externally(self) -> None:
        if not self.allow_large_external:
            raise TargetUnsupported("a live deployment gets no body over the edge limit on its public hostname "
                                    "unless --allow-large-external is given")

    def close(self) -> None:
        """Nothing to stop: the deployment is not ours."""


def _message(response: httpx.Response) -> str:
    try:
        body: Any = response.json()
        return str(body.get("message", body))
    except ValueError:
        return response.text[:100]
