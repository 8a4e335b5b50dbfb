"""The edge stand-in component's generated material: consistent with the component, kept while valid, renewable."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cryptography import x509

from immich_conformance import STACK_DIR
from immich_conformance.access_keys import KeyRing
from immich_conformance.edge.config import parse_config
from immich_conformance.images.edge_material import (
    GENERATED_FILES,
    EdgeMaterialError,
    prepare_edge_material,
    read_env_file,
)
from immich_conformance.limits import SERVICE_TOKEN_ID_HEADER

COMPONENT = STACK_DIR / "components" / "edge-standin"


@pytest.fixture
def component(tmp_path: Path) -> Path:
    target = tmp_path / "edge-standin"
    shutil.copytree(COMPONENT, target, ignore=shutil.ignore_patterns(*GENERATED_FILES))
    return target


def test_material_matches_the_components_settings(component: Path) -> None:
    material = prepare_edge_material(component)
    settings = read_env_file(component / "origin-proxy.env")
    assert material.renewed
    assert (material.team_domain, material.aud) == (settings["CF_TEAM_DOMAIN"], settings["CF_ACCESS_AUD"])
    assert material.team_domain.endswith(".test") and material.public_hostname.endswith(".test")
    assert material.node_port == 30080
    assert {p.name for p in material.secrets_dir.iterdir()} >= set(GENERATED_FILES)
    assert KeyRing.load(material.key_ring_file).team_domain == material.team_domain
    cert = x509.load_pem_x509_certificate((material.secrets_dir / "cert.pem").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == [material.team_domain]
    assert material.service_token_headers[SERVICE_TOKEN_ID_HEADER] == material.service_token.client_id


def test_the_written_configuration_is_what_the_stand_in_accepts(component: Path) -> None:
    material = prepare_edge_material(component)
    doc = json.loads((material.secrets_dir / "edge.json").read_text())
    # mounted paths, as the pod sees them; checked here against the local files
    assert doc["key_ring_file"] == "/etc/edge-standin/access-keys.json"
    local = {**doc, "key_ring_file": str(material.key_ring_file),
             "team_tls_cert": str(material.secrets_dir / "cert.pem"),
             "team_tls_key": str(material.secrets_dir / "key.pem")}
    config = parse_config(local)
    assert (config.aud, config.team_domain, config.public_hostname) == (material.aud, material.team_domain,
                                                                        material.public_hostname)
    assert config.service_tokens[0] == material.service_token


def test_valid_material_is_kept_and_renew_replaces_it(component: Path) -> None:
    first = prepare_edge_material(component)
    ring = (component / "secrets/access-keys.json").read_bytes()
    again = prepare_edge_material(component)
    assert not again.renewed and again.service_token == first.service_token
    assert (component / "secrets/access-keys.json").read_bytes() == ring
    renewed = prepare_edge_material(component, renew=True)
    assert renewed.renewed and renewed.service_token != first.service_token
    assert (component / "secrets/access-keys.json").read_bytes() != ring


def test_material_for_another_aud_is_replaced(component: Path) -> None:
    first = prepare_edge_material(component)
    env = component / "origin-proxy.env"
    env.write_text(env.read_text().replace(first.aud, "b" * 64))
    second = prepare_edge_material(component)
    assert second.renewed and second.aud == "b" * 64
    assert json.loads((component / "secrets/edge.json").read_text())["aud"] == "b" * 64


def test_a_team_domain_that_could_resolve_is_refused(component: Path) -> None:
    env = component / "origin-proxy.env"
    env.write_text(env.read_text().replace("cloudflareaccess.test", "cloudflareaccess.com"))
    with pytest.raises(EdgeMaterialError, match="must end in .test"):
        prepare_edge_material(component)


def test_a_wrong_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(EdgeMaterialError, match="not the edge stand-in component"):
        prepare_edge_material(tmp_path)
