"""stack/overlays/ci is the kind overlay plus the edge stand-in component plus the project's images, nothing else.

Three renderings: kind, ci, and kind + the component alone (a temporary overlay, as a user's CI on kind would write
it). ci must equal kind + component once its images are swapped back; kind + component must differ from kind only in
the objects the component declares, in the ways it declares.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from immich_conformance.images.edge_material import prepare_edge_material
from immich_conformance.images.recipes import EDGE_STANDIN_ARGS, image_refs
from immich_conformance.stack_checks import check_traffic_matrix, find_stack_dir, render_overlay
from immich_conformance.stack_checks.image_pins import split_image
from immich_conformance.stack_checks.manifests import Manifests
from immich_conformance.stack_checks.netpol import INTERNET_ADDRESS, NAMESPACE_LABEL, Endpoint, PolicySet, pod_endpoints
from immich_conformance.targets.sandbox import request_log_level

STACK = find_stack_dir()
KIND_WITH_COMPONENT = "kind-with-edge-standin"
# What the test overlays (ci, kind-edge-standin) add to kind: the edge stand-in, Immich's request log, and probes
# every second or two (with the base's budgets) for pods restarted on purpose.
TEST_COMPONENTS = ["../../components/edge-standin", "../../components/request-log", "../../components/quick-probes"]
PROBES = ("startupProbe", "readinessProbe", "livenessProbe")
HASHED = re.compile(r"^(?P<base>.+)-[a-z0-9]{10}$")

# The components' whole effect on the kind overlay.
REMOVED = {"Deployment/cloudflared", "ConfigMap/cloudflared", "Secret/cloudflared-tunnel",
           "NetworkPolicy/cloudflared-egress"}
ADDED = {"Deployment/edge-standin", "Service/edge-standin", "Service/edge-standin-team", "Secret/edge-standin",
         "Secret/edge-standin-ca", "NetworkPolicy/edge-standin-ingress", "NetworkPolicy/edge-standin-egress",
         "NetworkPolicy/origin-proxy-to-edge-standin"}
CHANGED = {"ConfigMap/origin-proxy-settings", "Deployment/origin-proxy", "NetworkPolicy/origin-proxy-ingress",
           "Deployment/immich-server", "Deployment/immich-machine-learning", "Deployment/immich-postgres",
           "Deployment/immich-redis"}
QUICKER_PROBES = ("Deployment/immich-server", "Deployment/immich-machine-learning", "Deployment/immich-postgres",
                  "Deployment/immich-redis")
SETTINGS_CHANGED = {"CF_TEAM_DOMAIN", "CF_ACCESS_AUD", "JWKS_URL", "JWKS_CONNECT", "JWKS_CA_FILE"}
# Which of the project's images stands for which upstream image.
STANDS_FOR = {
    "ghcr.io/immich-app/immich-server": "immich-server",
    "ghcr.io/immich-app/immich-machine-learning": "immich-machine-learning",
    "ghcr.io/immich-app/postgres": "postgres",
    "docker.io/valkey/valkey": "redis",
    "docker.io/envoyproxy/envoy": "origin-proxy",
    "localhost/immich-conformance/edge-standin": "edge-standin",
}


def _without_real_secrets(directory: str, names: list[str]) -> set[str]:
    if Path(directory).name != "secrets":
        return set()
    return {n for n in names if not n.endswith(".example")}


def _stack_copy(target: Path) -> Path:
    shutil.copytree(STACK, target, ignore=_without_real_secrets)
    overlay = target / "overlays" / KIND_WITH_COMPONENT
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "namespace": "immich",
        "resources": ["../kind"], "components": TEST_COMPONENTS}))
    return target


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    stack_copy = _stack_copy(tmp_path_factory.mktemp("stack") / "stack")
    return {
        "kind": render_overlay("kind", with_example_secrets=True).documents,
        "ci": render_overlay("ci", with_example_secrets=True).documents,
        "kind+component": render_overlay(KIND_WITH_COMPONENT, stack_copy, with_example_secrets=True).documents,
    }


def _key(doc: dict[str, Any]) -> str:
    name = doc["metadata"]["name"]
    match = HASHED.match(name)
    if doc["kind"] in ("ConfigMap", "Secret") and match:
        name = match["base"]
    return f"{doc['kind']}/{name}"


def _objects(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    objects = {_key(doc): doc for doc in docs}
    assert len(objects) == len(docs), "two objects with the same kind and name"
    return objects


def _normalized(doc: dict[str, Any], docs: list[dict[str, Any]]) -> Any:
    """``doc`` with generated names' hash suffixes removed (they change whenever any generated content does)."""
    text = json.dumps(doc, sort_keys=True)
    for other in docs:
        if other["kind"] in ("ConfigMap", "Secret") and HASHED.match(other["metadata"]["name"]):
            text = text.replace(f'"{other["metadata"]["name"]}"', f'"{_key(other).split("/", 1)[1]}"')
    return json.loads(text)


def _containers(docs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(doc["metadata"]["name"], c["name"]): c for doc in docs if doc["kind"] == "Deployment"
            for c in doc["spec"]["template"]["spec"].get("initContainers", []) + doc["spec"]["template"]["spec"][
                "containers"]}


def test_the_ci_overlay_only_builds_on_kind_adds_the_component_and_swaps_images() -> None:
    kustomization = yaml.safe_load((STACK / "overlays/ci/kustomization.yaml").read_text())
    assert set(kustomization) <= {"apiVersion", "kind", "namespace", "resources", "components", "images"}
    assert kustomization["resources"] == ["../kind"]
    assert kustomization["components"] == TEST_COMPONENTS


def test_the_overlay_for_real_images_adds_the_same_components() -> None:
    kustomization = yaml.safe_load((STACK / "overlays/kind-edge-standin/kustomization.yaml").read_text())
    assert kustomization["resources"] == ["../kind"]
    assert kustomization["components"] == TEST_COMPONENTS


def test_ci_is_kind_plus_component_with_the_projects_images(rendered: dict[str, list[dict[str, Any]]]) -> None:
    ci, kc = rendered["ci"], rendered["kind+component"]
    ci_containers, kc_containers = _containers(ci), _containers(kc)
    assert ci_containers.keys() == kc_containers.keys()
    refs = image_refs()
    for where, container in kc_containers.items():
        upstream = split_image(container["image"])[0]
        assert upstream in STANDS_FOR, f"{where}: no image of the project stands for {container['image']}"
        assert ci_containers[where]["image"] == refs[STANDS_FOR[upstream]], where
    assert {STANDS_FOR[split_image(c["image"])[0]] for c in kc_containers.values()} == set(refs)
    swapped = copy.deepcopy(ci)
    for where, container in _containers(swapped).items():
        container["image"] = kc_containers[where]["image"]
    assert _objects(swapped) == _objects(kc)


def test_the_component_changes_kind_only_where_it_says(rendered: dict[str, list[dict[str, Any]]]) -> None:
    kind, kc = rendered["kind"], rendered["kind+component"]
    before, after = _objects(kind), _objects(kc)
    assert before.keys() - after.keys() == REMOVED
    assert after.keys() - before.keys() == ADDED
    changed = {k for k in before.keys() & after.keys() if _normalized(before[k], kind) != _normalized(after[k], kc)}
    assert changed == CHANGED

    old, new = before["ConfigMap/origin-proxy-settings"]["data"], after["ConfigMap/origin-proxy-settings"]["data"]
    assert {k for k in old.keys() | new.keys() if old.get(k) != new.get(k)} == SETTINGS_CHANGED

    proxy = _normalized(after["Deployment/origin-proxy"], kc)
    spec = proxy["spec"]["template"]["spec"]
    spec["volumes"] = [v for v in spec["volumes"] if v["name"] != "edge-standin-ca"]
    envoy = spec["containers"][0]
    envoy["volumeMounts"] = [m for m in envoy["volumeMounts"] if m["name"] != "edge-standin-ca"]
    assert proxy == _normalized(before["Deployment/origin-proxy"], kind), "origin-proxy: more than the CA mount"

    quicker = {key: _with_probe_periods_of(_normalized(after[key], kc), _normalized(before[key], kind), key)
               for key in QUICKER_PROBES}
    for key in QUICKER_PROBES[1:]:
        assert quicker[key] == _normalized(before[key], kind), f"{key}: more than its probes' periods"

    server = quicker["Deployment/immich-server"]
    env = server["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "IMMICH_LOG_LEVEL", "value": request_log_level()} in env and request_log_level() == "debug"
    env.remove({"name": "IMMICH_LOG_LEVEL", "value": "debug"})
    assert server == _normalized(before["Deployment/immich-server"], kind), "immich-server: more than the log level"

    ingress = after["NetworkPolicy/origin-proxy-ingress"]["spec"]["ingress"]
    assert ingress == [{"from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "edge-standin"}}}],
                        "ports": [{"port": 8080, "protocol": "TCP"}]}]


def _with_probe_periods_of(after: dict[str, Any], before: dict[str, Any], key: str) -> dict[str, Any]:
    """``after`` with each probe's period and failure threshold put back to ``before``'s, once checked that it probes
    more often within the same budget (period x threshold: how long a probe may fail before the kubelet acts)."""
    quicker = 0
    for new, old in zip(after["spec"]["template"]["spec"]["containers"],
                        before["spec"]["template"]["spec"]["containers"], strict=True):
        for probe in PROBES:
            if probe not in old:
                continue
            n, o = new[probe], old[probe]
            budget_new = n.get("periodSeconds", 10) * n.get("failureThreshold", 3)
            assert budget_new == o.get("periodSeconds", 10) * o.get("failureThreshold", 3), f"{key} {probe}: budget"
            assert n.get("periodSeconds", 10) <= o.get("periodSeconds", 10), f"{key} {probe}: probed less often"
            quicker += n.get("periodSeconds", 10) < o.get("periodSeconds", 10)
            for field in ("periodSeconds", "failureThreshold"):
                n.pop(field, None)
                if field in o:
                    n[field] = o[field]
    assert quicker, f"{key}: no probe is quicker"
    return after


def test_only_the_lan_port_and_the_stand_ins_internet_side_leave_the_cluster(
        rendered: dict[str, list[dict[str, Any]]]) -> None:
    services = {d["metadata"]["name"]: d["spec"] for d in rendered["ci"] if d["kind"] == "Service"}
    node_ports = {name: [p["nodePort"] for p in spec["ports"]] for name, spec in services.items()
                  if spec.get("type") in ("NodePort", "LoadBalancer")}
    assert node_ports == {"immich-server": [30283], "edge-standin": [30080]}
    assert services["edge-standin"]["selector"] == {"app.kubernetes.io/name": "edge-standin"}
    assert [(p["port"], p["targetPort"]) for p in services["edge-standin"]["ports"]] == [(8080, "app")]
    assert services["edge-standin-team"]["type"] == "ClusterIP"


def test_the_stand_in_runs_what_the_image_expects(rendered: dict[str, list[dict[str, Any]]]) -> None:
    container = _containers(rendered["ci"])[("edge-standin", "edge-standin")]
    assert container["args"] == EDGE_STANDIN_ARGS
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"app": 8080, "team": 8443}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert [m["mountPath"] for m in container["volumeMounts"]] == ["/etc/edge-standin"]


def test_network_policies_hold_with_the_stand_in_in_the_tunnels_place(
        rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["ci"]
    m = Manifests(docs)
    pods = pod_endpoints(m)
    pods["internet"] = Endpoint("internet", address=INTERNET_ADDRESS)
    pods["another-pod"] = Endpoint("another-pod", "immich", {"app.kubernetes.io/name": "another-pod"})
    labels = {ns: {NAMESPACE_LABEL: ns} for ns in ("immich", "kube-system")}
    policies = PolicySet(m.of_kind("NetworkPolicy"), labels, "immich")
    flows = [
        ("internet", "edge-standin", 8080, True), ("edge-standin", "origin-proxy", 8080, True),
        ("origin-proxy", "edge-standin", 8443, True), ("origin-proxy", "immich-server", 2283, True),
        ("internet", "edge-standin", 8443, False), ("internet", "origin-proxy", 8080, False),
        ("edge-standin", "immich-server", 2283, False), ("edge-standin", "immich-postgres", 5432, False),
        ("edge-standin", "internet", 443, False), ("immich-server", "edge-standin", 8443, False),
        ("immich-machine-learning", "origin-proxy", 8080, False), ("another-pod", "edge-standin", 8443, False),
        ("another-pod", "origin-proxy", 8080, False),
    ]
    wrong = [(s, d, p) for s, d, p, allowed in flows if policies.allows(pods[s], pods[d], p) != allowed]
    assert not wrong, f"flows with the wrong verdict: {wrong}"
    # The design's matrix still holds, except the rows about cloudflared, which is not there.
    lan = render_overlay("kind", with_example_secrets=True).settings["lanCidr"]
    findings = check_traffic_matrix(docs, lan_cidr=lan)
    assert findings and all(f.subject == "cloudflared" for f in findings), [str(f) for f in findings]


def test_the_secrets_come_from_the_generated_material(tmp_path: Path) -> None:
    stack_copy = _stack_copy(tmp_path / "stack")
    material = prepare_edge_material(stack_copy / "components" / "edge-standin")
    for example in (stack_copy / "overlays/kind/secrets").glob("*.env.example"):
        shutil.copyfile(example, example.with_suffix(""))
    docs = render_overlay("ci", stack_copy).documents
    objects = _objects(docs)
    secret = {k: base64.b64decode(v) for k, v in objects["Secret/edge-standin"]["data"].items()}
    assert secret["edge.json"] == (material.secrets_dir / "edge.json").read_bytes()
    assert secret["access-keys.json"] == material.key_ring_file.read_bytes()
    assert secret["tls.crt"] == (material.secrets_dir / "cert.pem").read_bytes()
    assert base64.b64decode(objects["Secret/edge-standin-ca"]["data"]["ca.pem"]) == material.ca_file.read_bytes()
    settings = objects["ConfigMap/origin-proxy-settings"]["data"]
    assert (settings["CF_ACCESS_AUD"], settings["CF_TEAM_DOMAIN"]) == (material.aud, material.team_domain)
    assert settings["JWKS_URL"] == f"https://{material.team_domain}/cdn-cgi/access/certs"
    config = json.loads(secret["edge.json"])
    assert all(config[k].startswith("/etc/edge-standin/") for k in ("key_ring_file", "team_tls_cert", "team_tls_key"))
    proxy = objects["Deployment/origin-proxy"]["spec"]["template"]["spec"]
    mount = next(m for m in proxy["containers"][0]["volumeMounts"] if m["name"] == "edge-standin-ca")
    assert settings["JWKS_CA_FILE"] == f"{mount['mountPath']}/ca.pem"


def test_a_digest_the_base_pins_stays_out_of_the_ci_overlay(tmp_path: Path) -> None:
    """Renovate pins each image's digest in stack/base; the ci overlay runs images imported by tag (no registry), so
    its newTag must drop every such digest, while kind and k3s keep them."""
    stack_copy = _stack_copy(tmp_path / "stack")
    base = stack_copy / "base" / "kustomization.yaml"
    doc = yaml.safe_load(base.read_text())
    digests = {}
    for n, image in enumerate(doc["images"]):
        digests[image["name"]] = image.setdefault("digest", f"sha256:{n:064x}")
    base.write_text(yaml.safe_dump(doc, sort_keys=False))
    for overlay in ("kind", "k3s"):
        images = {split_image(c["image"])[0]: c["image"] for c in _containers(
            render_overlay(overlay, stack_copy, with_example_secrets=True).documents).values()}
        assert all(images[name].endswith(f"@{digest}") for name, digest in digests.items() if name in images), images
    ci_docs = render_overlay("ci", stack_copy, with_example_secrets=True).documents
    ci = [c["image"] for c in _containers(ci_docs).values()]
    assert set(ci) == set(image_refs().values()) and not [i for i in ci if "@" in i], ci


def test_the_ci_overlay_names_the_releases_of_the_base() -> None:
    """The ci overlay repeats the Immich and Envoy releases (to drop the base's digests): they must be the base's."""
    def tags(path: Path) -> dict[str, str]:
        return {i["name"]: i.get("newTag") for i in yaml.safe_load(path.read_text())["images"]
                if i["name"] in ("ghcr.io/immich-app/immich-server", "ghcr.io/immich-app/immich-machine-learning",
                                 "docker.io/envoyproxy/envoy")}
    assert tags(STACK / "overlays/ci/kustomization.yaml") == tags(STACK / "base/kustomization.yaml")
