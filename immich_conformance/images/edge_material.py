"""The edge stand-in component's generated material: what stack/components/edge-standin's Secrets are made from.

``prepare_edge_material(component_dir)`` writes, under ``<component_dir>/secrets/`` (git-ignored files):

* ``access-keys.json``: the Access team's key ring (two keys; the suite mints and rotates with it);
* ``ca.pem``, ``cert.pem``, ``key.pem``: a private CA and the team domain's TLS certificate (the team listener);
* ``edge.json``: the stand-in's configuration: its loopback listeners (the pod launcher publishes them), the origin
  relay, the public hostname, the team and AUD, one service token, and the mounted paths of the files above.

The team domain and the AUD tag come from the component's ``origin-proxy.env`` (the origin proxy's settings; neither
is a secret), so the stand-in and the proxy cannot disagree. Material that is still valid (same team, AUD and
hostname, certificate good for at least a day) is kept, so applying again does not restart the pods; ``renew=True``
makes new material. Call it before ``kubectl apply -k`` of an overlay that uses the component.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509

from immich_conformance import STACK_DIR
from immich_conformance.access_keys import KeyRing
from immich_conformance.edge.config import ConfigError, ServiceToken, parse_config
from immich_conformance.limits import SERVICE_TOKEN_ID_HEADER, SERVICE_TOKEN_SECRET_HEADER
from immich_conformance.tls import write_server_files

PUBLIC_HOSTNAME = "photos.conformance.test"
SERVICE_TOKEN_NAME = "conformance-suite"
MOUNT_DIR = "/etc/edge-standin"  # where the component mounts the edge-standin Secret
EDGE_LISTEN = "127.0.0.1:18080"
TEAM_LISTEN = "127.0.0.1:18443"
ORIGIN_RELAY_URL = "http://127.0.0.1:18000"
CERT_DAYS = 30
MIN_CERT_REMAINING = dt.timedelta(days=1)
GENERATED_FILES = ("edge.json", "access-keys.json", "ca.pem", "cert.pem", "key.pem")


class EdgeMaterialError(RuntimeError):
    """The component's material cannot be prepared; the message says what is wrong and how to fix it."""


@dataclass(frozen=True)
class EdgeMaterial:
    aud: str
    team_domain: str
    public_hostname: str
    service_token: ServiceToken
    key_ring_file: Path  # the suite mints tokens and cookies with this ring (KeyRing.load)
    ca_file: Path  # signs the team domain's certificate
    secrets_dir: Path
    node_port: int  # the stand-in's app listener on every node (Service edge-standin)
    renewed: bool  # False: the existing material was kept

    @property
    def service_token_headers(self) -> dict[str, str]:
        return {SERVICE_TOKEN_ID_HEADER: self.service_token.client_id,
                SERVICE_TOKEN_SECRET_HEADER: self.service_token.client_secret}

    def describe(self) -> str:
        state = "new material written" if self.renewed else "existing material kept (valid)"
        return (f"{self.secrets_dir}: {state}\n"
                f"  public hostname  {self.public_hostname}  (NodePort {self.node_port}; send Host: "
                f"{self.public_hostname})\n"
                f"  team domain      {self.team_domain}\n"
                f"  AUD              {self.aud}\n"
                f"  service token    {self.service_token.client_id}\n"
                f"  key ring         {self.key_ring_file}\n"
                f"  CA               {self.ca_file}")


def default_component_dir() -> Path:
    return STACK_DIR / "components" / "edge-standin"


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise EdgeMaterialError(f"cannot read {path}: {exc.strerror or exc}") from None
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise EdgeMaterialError(f"{path}:{number}: expected KEY=VALUE, got {line!r}")
        values[key.strip()] = value.strip()
    return values


def _component_settings(component_dir: Path) -> tuple[str, str, int]:
    """(team domain, AUD, node port) as the component's files set them."""
    env_file = component_dir / "origin-proxy.env"
    settings = read_env_file(env_file)
    for key in ("CF_TEAM_DOMAIN", "CF_ACCESS_AUD"):
        if not settings.get(key):
            raise EdgeMaterialError(f"{env_file} does not set {key}: the stand-in takes its team and AUD from there")
    team = settings["CF_TEAM_DOMAIN"]
    if not team.endswith(".test"):
        raise EdgeMaterialError(f"{env_file}: CF_TEAM_DOMAIN={team} must end in .test, so that no client following "
                                "an Access redirect can ever resolve it")
    service_file = component_dir / "service.yaml"
    try:
        service = yaml.safe_load(service_file.read_text())
        node_port = int(next(p["nodePort"] for p in service["spec"]["ports"] if p.get("name") == "app"))
    except (OSError, yaml.YAMLError, KeyError, TypeError, StopIteration, ValueError):
        raise EdgeMaterialError(f"{service_file} must be the edge-standin Service with a port named app and its "
                                "nodePort") from None
    return team, settings["CF_ACCESS_AUD"], node_port


def edge_config(team: str, aud: str, token: ServiceToken) -> dict[str, Any]:
    """The stand-in's configuration as the pod sees it (files under MOUNT_DIR, absolute: a Secret update swaps the
    mounted files, and a path resolved through the old ones would go stale)."""
    return {
        "listen": EDGE_LISTEN,
        "public_hostname": PUBLIC_HOSTNAME,
        "origin_url": ORIGIN_RELAY_URL,
        "team_domain": team,
        "aud": aud,
        "key_ring_file": f"{MOUNT_DIR}/access-keys.json",
        "service_tokens": [{"client_id": token.client_id, "client_secret": token.client_secret, "name": token.name}],
        "team_listen": TEAM_LISTEN,
        "team_tls_cert": f"{MOUNT_DIR}/tls.crt",
        "team_tls_key": f"{MOUNT_DIR}/tls.key",
    }


def _check_config(doc: dict[str, Any], secrets_dir: Path) -> None:
    """Check ``doc`` with the stand-in's own parser, its mounted paths mapped to the files here."""
    local = {**doc, "key_ring_file": str(secrets_dir / "access-keys.json"),
             "team_tls_cert": str(secrets_dir / "cert.pem"), "team_tls_key": str(secrets_dir / "key.pem")}
    try:
        parse_config(local, secrets_dir / "edge.json")
    except ConfigError as exc:
        raise EdgeMaterialError(f"the stand-in would refuse the configuration written: {exc}") from None


def _existing(secrets_dir: Path, team: str, aud: str) -> ServiceToken | None:
    """The service token of the material in ``secrets_dir`` if all of it is there and still good, else None."""
    if not all((secrets_dir / name).is_file() for name in GENERATED_FILES):
        return None
    try:
        doc = json.loads((secrets_dir / "edge.json").read_text())
        ring = KeyRing.load(secrets_dir / "access-keys.json")
        cert = x509.load_pem_x509_certificate((secrets_dir / "cert.pem").read_bytes())
        token = ServiceToken(**doc["service_tokens"][0])
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName)
    fresh = cert.not_valid_after_utc - dt.datetime.now(dt.timezone.utc) > MIN_CERT_REMAINING
    if ring.team_domain != team or team not in names or not fresh or doc != edge_config(team, aud, token):
        return None
    return token


def prepare_edge_material(component_dir: Path, *, renew: bool = False) -> EdgeMaterial:
    """Write the files the component's secretGenerator reads (unless valid ones are there) and describe them."""
    component_dir = component_dir.resolve()
    if not (component_dir / "kustomization.yaml").is_file():
        raise EdgeMaterialError(f"{component_dir} is not the edge stand-in component (no kustomization.yaml); "
                                f"it is {default_component_dir()}")
    team, aud, node_port = _component_settings(component_dir)
    secrets_dir = component_dir / "secrets"
    secrets_dir.mkdir(exist_ok=True)
    token = None if renew else _existing(secrets_dir, team, aud)
    renewed = token is None
    if token is None:
        token = ServiceToken(client_id=f"{secrets.token_hex(16)}.access", client_secret=secrets.token_hex(32),
                             name=SERVICE_TOKEN_NAME)
        KeyRing.generate(team, count=2).save(secrets_dir / "access-keys.json")
        write_server_files(secrets_dir, [team], ca_name="Edge stand-in CA", days=CERT_DAYS)
        doc = edge_config(team, aud, token)
        _check_config(doc, secrets_dir)
        target = secrets_dir / "edge.json"
        partial = target.with_suffix(".partial")
        partial.write_text(json.dumps(doc, indent=2) + "\n")
        partial.chmod(0o600)
        partial.replace(target)
    return _material(secrets_dir, team, aud, node_port, token, renewed=renewed)


def load_edge_material(component_dir: Path) -> EdgeMaterial:
    """The material already in the component, read only; EdgeMaterialError when it is missing or no longer valid."""
    component_dir = component_dir.resolve()
    team, aud, node_port = _component_settings(component_dir)
    secrets_dir = component_dir / "secrets"
    token = _existing(secrets_dir, team, aud)
    if token is None:
        raise EdgeMaterialError(f"{secrets_dir} holds no complete and valid edge material (python -m "
                                "immich_conformance.images prepare-edge writes it)")
    return _material(secrets_dir, team, aud, node_port, token, renewed=False)


def _material(secrets_dir: Path, team: str, aud: str, node_port: int, token: ServiceToken, *,
              renewed: bool) -> EdgeMaterial:
    return EdgeMaterial(aud=aud, team_domain=team, public_hostname=PUBLIC_HOSTNAME, service_token=token,
                        key_ring_file=secrets_dir / "access-keys.json", ca_file=secrets_dir / "ca.pem",
                        secrets_dir=secrets_dir, node_port=node_port, renewed=renewed)
