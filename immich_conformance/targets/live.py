"""The live target: a running deployment, checked without harm.

Settings come from a YAML file (``--live-config`` or IMMICH_CONFORMANCE_LIVE_CONFIG); secrets only from the
environment, never from the file, and they are never printed. The suite touches only the assets it creates and
deletes them all; it sends no body over the edge limit to the public hostname unless ``--allow-large-external``.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import httpx
import yaml

from ..immich_client import ImmichClient, json_or_empty
from ..ledger import Ledger, LedgerBusy
from ..limits import SERVICE_TOKEN_ID_HEADER, SERVICE_TOKEN_SECRET_HEADER
from ..trust_store import system_trust
from ..upload_bodies import MultipartUpload, PhotoSpec
from .base import Endpoint, Target, TargetUnsupported
from .credentials import API_KEY_ENV, TOKEN_ID_ENV, TOKEN_SECRET_ENV, secret

MEDIA_LOCATION_CHECK = "media_location check"  # the ledger path of the check's photo
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
Environment: {API_KEY_ENV} (required), {TOKEN_ID_ENV} and {TOKEN_SECRET_ENV} (an Access service token;
required unless --lan-only).
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
            _check_url(path, key, str(doc[key]))
        if doc.get("media_location") and not str(doc["media_location"]).startswith("/"):
            raise LiveSettingsError(f"{path}: media_location={doc['media_location']!r}: give Immich's "
                                    "IMMICH_MEDIA_LOCATION, an absolute path inside the server (default /data)")
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
    persists_between_runs = True

    def __init__(self, settings: LiveSettings, *, allow_large_external: bool = False, lan_only: bool = False,
                 env: dict[str, str] | None = None) -> None:
        env = dict(os.environ if env is None else env)
        self.settings = settings
        self.allow_large_external = allow_large_external
        self.lan_only = lan_only
        self._api_key = secret(API_KEY_ENV, env)
        if not self._api_key:
            raise LiveSettingsError(f"{API_KEY_ENV} is not set: create an API key in Immich (Account Settings > "
                                    f"API Keys, permission all) and export it as {API_KEY_ENV}")
        self._token = (secret(TOKEN_ID_ENV, env), secret(TOKEN_SECRET_ENV, env))
        if not all(self._token) and not lan_only:
            names = (TOKEN_ID_ENV, TOKEN_SECRET_ENV)
            missing = " and ".join(name for name, value in zip(names, self._token, strict=True) if not value)
            raise LiveSettingsError(f"{missing} not set: without an Access service token the internet path goes "
                                    "unchecked. Create one (Zero Trust > Access > Service Auth), allow it in the "
                                    f"application's policy and export {TOKEN_ID_ENV} and {TOKEN_SECRET_ENV}; or run "
                                    "with --lan-only to check the LAN path alone")
        public = urlsplit(settings.public_url)
        self.public_hostname = public.hostname or ""
        self.aud = ""
        self.media_location = PurePosixPath(settings.media_location)
        if settings.public_connect:
            self._external = Endpoint(f"{public.scheme}://{settings.public_connect}", {"Host": public.netloc})
        else:
            self._external = Endpoint(settings.public_url)
        self._lan = Endpoint(settings.lan_url)

    def _start(self) -> None:
        """Check that Immich accepts the API key and stores its files under media_location before any scenario
        runs."""
        try:
            response = httpx.get(f"{self._lan.url}/api/users/me", headers={"x-api-key": self._api_key}, timeout=15,
                                 verify=system_trust())
        except httpx.HTTPError as exc:
            raise LiveSettingsError(f"cannot reach Immich at lan_url {self._lan.url}: {exc}") from None
        if response.status_code == 401:
            raise LiveSettingsError(f"Immich at {self._lan.url} refused the API key in {API_KEY_ENV} "
                                    f"({_message(response)}): create a new key (permission all) and export it")
        if response.status_code != 200:
            raise LiveSettingsError(f"Immich at {self._lan.url} answered {response.status_code} for the API key check")
        self._check_media_location()

    def _check_media_location(self) -> None:
        """Before any scenario: one small photo of the suite's own (in the ledger before it is sent, force-deleted at
        once) shows where the server stores its files; a media_location that does not hold them stops the run.
        Immich's API has no other place that tells its IMMICH_MEDIA_LOCATION."""
        image = PhotoSpec.unique()
        checksum = image.sha1_base64()
        ledger = Ledger(Ledger.default_path(self._lan.url), self._lan.url)
        ledger.intend(checksum, path=MEDIA_LOCATION_CHECK)
        client = self._lan.client(self._api_key)
        try:
            stored = self._stored_path(client, image, checksum, ledger)
        except httpx.HTTPError as exc:
            raise LiveSettingsError(f"Immich at {self._lan.url} stopped answering during the media_location check "
                                    f"(a small upload, then its deletion): {exc}") from None
        finally:
            client.close()
        with contextlib.suppress(LedgerBusy, OSError):
            ledger.lock()
            ledger.compact()
            ledger.unlock()
        if not PurePosixPath(stored).is_relative_to(self.media_location):
            root = stored.split("/upload/", 1)[0] if "/upload/" in stored else str(PurePosixPath(stored).parent)
            raise LiveSettingsError(f"media_location={str(self.media_location)!r} is not where Immich at "
                                    f"{self._lan.url} stores its files: it stored a test photo at {stored}, so its "
                                    f"IMMICH_MEDIA_LOCATION is {root}: set media_location: {root} in the live settings")

    def _stored_path(self, client: ImmichClient, image: PhotoSpec, checksum: str, ledger: Ledger) -> str:
        """Upload ``image``, read its originalPath, delete it; the path."""
        response = client.upload(MultipartUpload.for_photo(image, "conformance-media-location-check.jpg"))
        if response.status_code not in (200, 201):
            raise LiveSettingsError(f"Immich at {self._lan.url} answered {response.status_code} to a small upload "
                                    f"({_message(response)}), the check of media_location: the API key in "
                                    f"{API_KEY_ENV} needs permission all")
        asset_id = str(response.json().get("id"))
        ledger.created(checksum, asset_id)
        stored = str(json_or_empty(client.asset(asset_id)).get("originalPath", ""))
        if client.delete_assets([asset_id], force=True).status_code == 204:
            ledger.deleted([asset_id], {asset_id: checksum})
        return stored

    @property
    def external(self) -> Endpoint:
        if self.lan_only:
            raise TargetUnsupported("--lan-only: the internet path (the public hostname) is not checked in this run")
        return self._external

    @property
    def team_domain(self) -> str:  # type: ignore[override]
        if not self.settings.team_domain:
            raise TargetUnsupported("the live settings give no team_domain: where the Access login must redirect "
                                    "is not checked (set team_domain: <team>.cloudflareaccess.com)")
        return self.settings.team_domain

    @property
    def service_token_headers(self) -> dict[str, str]:
        if self.lan_only:
            raise TargetUnsupported("--lan-only: the internet path (the public hostname) is not checked in this run")
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


def _check_url(path: Path, key: str, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise LiveSettingsError(f"{path}: {key}={url!r} is not an http(s) URL")
    if not parts.hostname:
        raise LiveSettingsError(f"{path}: {key}={url!r} has no host name")
    try:
        parts.port  # noqa: B018 - raises for a port out of range
    except ValueError:
        raise LiveSettingsError(f"{path}: {key}={url!r}: the port must be a number from 1 to 65535") from None


def _message(response: httpx.Response) -> str:
    try:
        body: Any = response.json()
        return str(body.get("message", body))
    except ValueError:
        return response.text[:100]
