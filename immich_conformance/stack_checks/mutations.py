"""Seeded mistakes: each one changes a rendered stack the way a real edit could go wrong, and names the check that
must catch it. A mutation the checks do not catch shows a hole in the static proof."""

from __future__ import annotations

import base64
import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import yaml

from immich_conformance.stack_checks.findings import Finding
from immich_conformance.stack_checks.image_pins import split_image
from immich_conformance.stack_checks.rendering import RenderedOverlay

Docs = list[dict[str, Any]]
GENERATED_SUFFIX = re.compile(r"-[a-z0-9]{10}")


class MutationTargetMissing(Exception):
    """The rendered stack lacks what a mutation edits: the catalogue and the stack have drifted apart."""


@dataclass(frozen=True)
class Mutation:
    name: str
    description: str
    caught_by: str  # the check id that must report it
    apply: Callable[[Docs], None]
    # The same edit made to the files of stack/base/origin-proxy (as a person edits envoy.yaml, not the ConfigMap).
    edit_proxy_files: Callable[[dict[str, str]], None] | None = None
    # Rendered from the overlay's own files (check-stack without --example-secrets), not the committed examples.
    own_files: bool = False


def find(docs: Docs, kind: str, name: str) -> dict[str, Any]:
    """The object of that kind and name; generated ConfigMaps and Secrets match with their hash suffix."""
    for doc in docs:
        actual = str((doc.get("metadata") or {}).get("name"))
        if doc.get("kind") == kind and (actual == name or (actual.startswith(name + "-")
                                                           and GENERATED_SUFFIX.fullmatch(actual[len(name):]))):
            return doc
    raise MutationTargetMissing(f"no {kind} {name} in the rendered stack")


def container(docs: Docs, deployment: str, name: str | None = None) -> dict[str, Any]:
    containers = find(docs, "Deployment", deployment)["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if name is None or c["name"] == name)


def volume(docs: Docs, deployment: str, name: str) -> dict[str, Any]:
    volumes = find(docs, "Deployment", deployment)["spec"]["template"]["spec"]["volumes"]
    return next(v for v in volumes if v["name"] == name)


def env_var(docs: Docs, deployment: str, name: str) -> dict[str, Any]:
    return next(v for v in container(docs, deployment)["env"] if v["name"] == name)


def remove(docs: Docs, kind: str, name: str) -> None:
    docs.remove(find(docs, kind, name))


def edit_cloudflared_config(docs: Docs, change: Callable[[dict[str, Any]], None]) -> None:
    config_map = find(docs, "ConfigMap", "cloudflared")
    config = yaml.safe_load(config_map["data"]["config.yaml"])
    change(config)
    config_map["data"]["config.yaml"] = yaml.safe_dump(config)


def _set(target: dict[str, Any], key: str, value: Any) -> None:
    target[key] = value


def _add_env(docs: Docs, deployment: str, name: str, value: str) -> None:
    container(docs, deployment).setdefault("env", []).append({"name": name, "value": value})


def _replace_source(item: dict[str, Any], source: dict[str, Any]) -> None:
    """Keep the item's name, give it another source (a volume's kind, an env var's value)."""
    name = item["name"]
    item.clear()
    item.update(name=name, **source)


def _image_tag(docs: Docs, deployment: str, image: str) -> None:
    container(docs, deployment)["image"] = image


def _text_edit(old: str, new: str) -> Callable[[str], str]:
    def change(text: str) -> str:
        if old not in text:
            raise MutationTargetMissing(f"envoy.yaml has no {old!r}")
        return text.replace(old, new, 1)
    return change


def _envoy(name: str, description: str, change: Callable[[str], str], caught_by: str = "proxy-envoy") -> Mutation:
    """A mutation of stack/base/origin-proxy/envoy.yaml: the file and the ConfigMap made from it change alike."""
    def apply(docs: Docs) -> None:
        data = find(docs, "ConfigMap", "origin-proxy")["data"]
        data["envoy.yaml"] = change(data["envoy.yaml"])

    def edit_files(files: dict[str, str]) -> None:
        files["envoy.yaml"] = change(files["envoy.yaml"])
    return Mutation(name, description, caught_by, apply, edit_proxy_files=edit_files)


ROUTER_BLOCK = ('          - name: envoy.filters.http.router\n            typed_config:\n              "@type": '
                'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router\n')
JWT_BLOCK_START = "          - name: envoy.filters.http.jwt_authn\n"


def _router_first(text: str) -> str:
    if ROUTER_BLOCK not in text or JWT_BLOCK_START not in text:
        raise MutationTargetMissing("envoy.yaml's http_filters are not laid out as expected")
    text = text.replace(ROUTER_BLOCK, "", 1)
    return text.replace(JWT_BLOCK_START, ROUTER_BLOCK + JWT_BLOCK_START, 1)


# Values a person could really have set: the filled-in overlay that the placeholder mutations start from.
FILLED_TEAM = "photo-family"
FILLED_AUD = "3f9c2a7d1e8b4c6a9d0e2f4b6c8a1d3e5f7b9c0d2e4f6a8b0c1d3e5f7a9b2c4d"
FILLED_HOSTNAME = "photos.family-home.net"


def fill_in(docs: Docs, keep: str = "") -> None:
    """Replace every placeholder of a rendered overlay with a real-looking value, except `keep` (secrets, team or
    hostname)."""
    if keep != "secrets":
        for doc in docs:
            if doc.get("kind") == "Secret":
                doc["data"] = {k: base64.b64encode(f"{k.lower()}-7c1e9a0b5d3f2e8a".encode()).decode()
                               for k in doc.get("data") or {}}
    if keep != "team":
        find(docs, "ConfigMap", "origin-proxy-settings")["data"].update(
            CF_TEAM_DOMAIN=f"{FILLED_TEAM}.cloudflareaccess.com", CF_ACCESS_AUD=FILLED_AUD)

    def tunnel(config: dict[str, Any]) -> None:
        rule = config["ingress"][0]
        if keep != "hostname":
            rule["hostname"] = FILLED_HOSTNAME
        if keep != "team":
            rule["originRequest"]["access"].update(teamName=FILLED_TEAM, audTag=[FILLED_AUD])
    edit_cloudflared_config(docs, tunnel)


def _without_digest(docs: Docs, deployment: str) -> None:
    image = container(docs, deployment)["image"]
    if "@" not in image:
        raise MutationTargetMissing(f"{deployment}'s image {image} has no digest to remove")
    container(docs, deployment)["image"] = image.split("@", 1)[0]


def _retag(docs: Docs, deployment: str, tag: str) -> None:
    """The deployment's image at another tag (its digest dropped, as an edited newTag drops it)."""
    name = split_image(container(docs, deployment)["image"])[0]
    container(docs, deployment)["image"] = f"{name}:{tag}"


def _without_arg(docs: Docs, deployment: str, arg: str) -> None:
    """The container without option ``arg`` and the value after it."""
    args = container(docs, deployment).get("args") or []
    if arg not in args:
        raise MutationTargetMissing(f"{deployment} is not started with {arg}")
    at = args.index(arg)
    del args[at:at + 2]


def _without_env(docs: Docs, deployment: str, name: str) -> None:
    target = container(docs, deployment)
    target["env"] = [v for v in target.get("env") or [] if v.get("name") != name]


def _fill_in_but_secret(docs: Docs, name: str) -> None:
    """Every placeholder filled in except Secret ``name``, which keeps its example values."""
    kept = copy.deepcopy(find(docs, "Secret", name)["data"])
    fill_in(docs)
    find(docs, "Secret", name)["data"] = kept


CATALOGUE: list[Mutation] = [
    Mutation("proxy-nodeport", "the origin proxy's Service made a NodePort", "exposure",
             lambda d: find(d, "Service", "origin-proxy")["spec"].update(type="NodePort")),
    Mutation("postgres-loadbalancer", "Postgres exposed as a LoadBalancer", "exposure",
             lambda d: find(d, "Service", "immich-postgres")["spec"].update(type="LoadBalancer")),
    Mutation("cloudflared-host-network", "cloudflared on the host network", "exposure",
             lambda d: find(d, "Deployment", "cloudflared")["spec"]["template"]["spec"].update(hostNetwork=True)),
    Mutation("cloudflared-to-server", "cloudflared pointed at immich-server, bypassing the proxy",
             "cloudflared-ingress",
             lambda d: edit_cloudflared_config(d, lambda c: _set(c["ingress"][0], "service",
                                                                 "http://immich-server:2283"))),
    Mutation("cloudflared-extra-route", "a second tunnel route straight to Postgres", "cloudflared-ingress",
             lambda d: edit_cloudflared_config(d, lambda c: c["ingress"].insert(
                 0, {"hostname": "db.example.com", "service": "tcp://immich-postgres:5432"}))),
    Mutation("cloudflared-proxy-health-port", "cloudflared sent to the proxy's health port", "cloudflared-ingress",
             lambda d: edit_cloudflared_config(d, lambda c: _set(c["ingress"][0], "service",
                                                                 "http://origin-proxy:8081"))),
    Mutation("cloudflared-access-off", "cloudflared's own Access check switched off", "cloudflared-ingress",
             lambda d: edit_cloudflared_config(d, lambda c: _set(c["ingress"][0]["originRequest"]["access"],
                                                                 "required", False))),
    Mutation("nas-emptydir", "the library (NAS) replaced by an emptyDir", "nas-library",
             lambda d: _replace_source(volume(d, "immich-server", "library"), {"emptyDir": {}})),
    Mutation("nas-directory-or-create", "the NAS hostPath made DirectoryOrCreate", "nas-library",
             lambda d: volume(d, "immich-server", "library")["hostPath"].update(type="DirectoryOrCreate")),
    Mutation("model-cache-untyped", "the model cache hostPath without a type (created when missing)",
             "hostpath-types", lambda d: volume(d, "immich-machine-learning", "model-cache")["hostPath"].pop("type")),
    Mutation("media-location-wrong", "IMMICH_MEDIA_LOCATION set to the old path", "nas-library",
             lambda d: env_var(d, "immich-server", "IMMICH_MEDIA_LOCATION").update(value="/usr/src/app/upload")),
    Mutation("library-mounted-elsewhere", "the library mounted away from /data", "nas-library",
             lambda d: next(m for m in container(d, "immich-server")["volumeMounts"]
                            if m["name"] == "library").update(mountPath="/usr/src/app/upload")),
    Mutation("mount-check-disabled", "IMMICH_IGNORE_MOUNT_CHECK_ERRORS=true added", "mount-guard",
             lambda d: _add_env(d, "immich-server", "IMMICH_IGNORE_MOUNT_CHECK_ERRORS", "true")),
    Mutation("ml-library-writable", "machine learning mounts the library writable", "library-read-only",
             lambda d: next(m for m in container(d, "immich-machine-learning")["volumeMounts"]
                            if m["name"] == "library").update(readOnly=False)),
    Mutation("default-deny-removed", "the default-deny NetworkPolicy removed", "network-policy",
             lambda d: remove(d, "NetworkPolicy", "default-deny")),
    Mutation("proxy-policy-removed", "the cloudflared -> proxy NetworkPolicy removed", "network-policy",
             lambda d: remove(d, "NetworkPolicy", "origin-proxy-ingress")),
    Mutation("lan-policy-widened", "the LAN NetworkPolicy opened to every address", "network-policy",
             lambda d: find(d, "NetworkPolicy", "immich-server-from-lan")["spec"]["ingress"][0]["from"][0]
             ["ipBlock"].update(cidr="0.0.0.0/0")),
    Mutation("server-policy-any-pod", "the proxy -> server policy lets any pod in", "network-policy",
             lambda d: find(d, "NetworkPolicy", "immich-server-from-proxy")["spec"]["ingress"][0]["from"][0]
             .update(podSelector={})),
    Mutation("cloudflared-egress-open", "cloudflared may connect anywhere, the home network too", "network-policy",
             lambda d: find(d, "NetworkPolicy", "cloudflared-egress")["spec"].update(egress=[{}])),
    Mutation("selector-typo", "a typo in the immich-server Service selector", "service-selectors",
             lambda d: find(d, "Service", "immich-server")["spec"]["selector"]
             .update({"app.kubernetes.io/name": "immich-servr"})),
    Mutation("target-port-typo", "a typo in machine learning's Service targetPort", "service-target-ports",
             lambda d: find(d, "Service", "immich-machine-learning")["spec"]["ports"][0].update(targetPort=3030)),
    Mutation("missing-secret-key", "the server asks for a Secret key that does not exist", "config-references",
             lambda d: env_var(d, "immich-server", "DB_PASSWORD")["valueFrom"]["secretKeyRef"]
             .update(key="DB_PASSWD")),
    Mutation("missing-configmap", "Postgres reads a ConfigMap that does not exist", "config-references",
             lambda d: env_var(d, "immich-postgres", "POSTGRES_DB")["valueFrom"]["configMapKeyRef"]
             .update(name="immich-db")),
    Mutation("missing-proxy-setting", "the proxy settings lose CF_ACCESS_AUD", "proxy-config",
             lambda d: find(d, "ConfigMap", "origin-proxy-settings")["data"].pop("CF_ACCESS_AUD")),
    Mutation("proxy-body-limit-raised", "the proxy's body limit raised to 1 GiB", "proxy-config",
             lambda d: find(d, "ConfigMap", "origin-proxy-settings")["data"]
             .update(MAX_BODY_BYTES="1073741824")),
    Mutation("proxy-config-edited", "the proxy runs an envoy.yaml other than the repository's", "proxy-config",
             lambda d: find(d, "ConfigMap", "origin-proxy")["data"]
             .update({"envoy.yaml": find(d, "ConfigMap", "origin-proxy")["data"]["envoy.yaml"]
                      .replace("require_expiration: true", "require_expiration: false")})),
    Mutation("proxy-upstream-wrong", "the proxy forwards to machine learning", "server-endpoints",
             lambda d: find(d, "ConfigMap", "origin-proxy-settings")["data"]
             .update(UPSTREAM_ADDRESS="immich-machine-learning:3003")),
    Mutation("probe-wrong-port", "the server's readiness probe on a port it does not open", "probe-ports",
             lambda d: container(d, "immich-server")["readinessProbe"]["httpGet"].update(port=2284)),
    Mutation("probe-wrong-port-name", "the proxy's liveness probe names a port that does not exist", "probe-ports",
             lambda d: container(d, "origin-proxy")["livenessProbe"]["httpGet"].update(port="healthz")),
    Mutation("db-host-typo", "DB_HOSTNAME names a Service that does not exist", "server-endpoints",
             lambda d: env_var(d, "immich-server", "DB_HOSTNAME").update(value="immich-postgresql")),
    Mutation("redis-host-wrong", "REDIS_HOSTNAME points at Postgres", "server-endpoints",
             lambda d: env_var(d, "immich-server", "REDIS_HOSTNAME").update(value="immich-postgres")),
    Mutation("ml-url-wrong-port", "IMMICH_MACHINE_LEARNING_URL with the wrong port", "server-endpoints",
             lambda d: env_var(d, "immich-server", "IMMICH_MACHINE_LEARNING_URL")
             .update(value="http://immich-machine-learning:3030")),
    Mutation("latest-tag", "machine learning on the 'latest' tag", "images-pinned",
             lambda d: _image_tag(d, "immich-machine-learning", "ghcr.io/immich-app/immich-machine-learning:latest")),
    Mutation("untagged-image", "valkey without tag or digest", "images-pinned",
             lambda d: _image_tag(d, "immich-redis", "docker.io/valkey/valkey")),
    Mutation("release-drift", "machine learning on another Immich release than the server", "immich-release",
             lambda d: _image_tag(d, "immich-machine-learning", "ghcr.io/immich-app/immich-machine-learning:v3.0.2")),
    Mutation("server-release-ahead", "the server moved to another release, machine learning left behind",
             "immich-release", lambda d: _retag(d, "immich-server", "v3.1.0")),
    Mutation("redis-no-password", "Redis started without --requirepass", "redis-password",
             lambda d: _without_arg(d, "immich-redis", "--requirepass")),
    Mutation("redis-password-in-args", "Redis's password written into its args", "redis-password",
             lambda d: container(d, "immich-redis").update(args=["--requirepass", "hunter2"])),
    Mutation("redis-password-from-configmap", "Redis's password variable taken from a ConfigMap", "redis-password",
             lambda d: _replace_source(env_var(d, "immich-redis", "REDIS_PASSWORD"), {"valueFrom": {
                 "configMapKeyRef": {"name": find(d, "ConfigMap", "immich-database")["metadata"]["name"],
                                     "key": "DB_USERNAME"}}})),
    Mutation("redis-probe-without-password", "Redis's readiness probe runs redis-cli without REDISCLI_AUTH",
             "redis-password", lambda d: _without_env(d, "immich-redis", "REDISCLI_AUTH")),
    Mutation("server-redis-password-missing", "immich-server without REDIS_PASSWORD", "redis-password",
             lambda d: _without_env(d, "immich-server", "REDIS_PASSWORD")),
    Mutation("server-redis-password-other-secret", "immich-server's REDIS_PASSWORD from the database's Secret",
             "redis-password",
             lambda d: env_var(d, "immich-server", "REDIS_PASSWORD")["valueFrom"]["secretKeyRef"].update(
                 env_var(d, "immich-server", "DB_PASSWORD")["valueFrom"]["secretKeyRef"])),
    Mutation("password-inline", "the database password written into the manifest", "secrets-not-inline",
             lambda d: _replace_source(env_var(d, "immich-server", "DB_PASSWORD"), {"value": "hunter2"})),
    Mutation("postgres-digest-removed", "Postgres's image without its digest", "images-pinned",
             lambda d: _without_digest(d, "immich-postgres")),
    Mutation("valkey-digest-removed", "valkey's image without its digest", "images-pinned",
             lambda d: _without_digest(d, "immich-redis")),
    Mutation("lan-node-port-out-of-range", "lanNodePort set to 8080, outside 30000-32767", "node-ports",
             lambda d: find(d, "Service", "immich-server")["spec"]["ports"][0].update(nodePort=8080)),
    _envoy("envoy-no-expiration", "require_expiration taken out of envoy.yaml",
           _text_edit("                  require_expiration: true\n", "")),
    _envoy("envoy-jwt-api-only", "the JWT rule narrowed to /api (the web app's paths go without a token)",
           _text_edit("              - match: {prefix: /}\n                requires:",
                      "              - match: {prefix: /api}\n                requires:")),
    _envoy("envoy-jwt-escape-rule", "a jwt_authn rule without requires for /api/shared-links ahead of the others",
           _text_edit("              rules:\n",
                      "              rules:\n              - match: {prefix: /api/shared-links}\n")),
    _envoy("envoy-jwt-off-on-route", "jwt_authn switched off on the catch-all route",
           _text_edit("              - match: {prefix: /}\n                route:\n",
                      "              - match: {prefix: /}\n                typed_per_filter_config:\n"
                      "                  envoy.filters.http.jwt_authn:\n                    \"@type\": type.googleapis."
                      "com/envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig\n"
                      "                    disabled: true\n                route:\n")),
    _envoy("envoy-router-first", "the router placed before jwt_authn, which then never runs", _router_first),
    _envoy("envoy-cors-preflight-bypass", "jwt_authn lets CORS preflight requests through",
           _text_edit("              rules:\n", "              bypass_cors_preflight: true\n              rules:\n")),
    _envoy("envoy-issuer-other-team", "the issuer written for another Access team",
           _text_edit("issuer: https://${CF_TEAM_DOMAIN}", "issuer: https://other-team.cloudflareaccess.com")),
    _envoy("envoy-any-audience", "the audiences line taken out (any application's token passes)",
           _text_edit("                  audiences: [${CF_ACCESS_AUD}]\n", "")),
    _envoy("envoy-keys-elsewhere", "the JWKS fetched from a host that is not the team's",
           _text_edit('uri: "${JWKS_URL}"', 'uri: "https://keys.other-team.net/cdn-cgi/access/certs"')),
    _envoy("envoy-body-limit-raised", "max_request_bytes written as 1 GiB in envoy.yaml",
           _text_edit("max_request_bytes: ${MAX_BODY_BYTES}", "max_request_bytes: 1073741824")),
    _envoy("envoy-body-limit-off-with-bodies", "the websocket route (no body limit) admits requests with a body",
           _text_edit("                  - {name: content-length, present_match: true, invert_match: true}\n", "")),
    _envoy("envoy-body-filter-removed", "the body-limit filter taken out of envoy.yaml",
           _text_edit("          - name: envoy.filters.http.body_size_limit\n",
                      "          - name: envoy.filters.http.noop\n")),
    Mutation("pod-security-policy-removed", "stack/base/pod-security/ left out of the overlay", "pod-security",
             lambda d: remove(d, "ValidatingAdmissionPolicyBinding", "immich-pod-security")),
    Mutation("pod-security-bound-elsewhere", "the policy bound to another namespace than the stack's",
             "pod-security", lambda d: find(d, "ValidatingAdmissionPolicyBinding", "immich-pod-security")["spec"]
             ["matchResources"]["namespaceSelector"]["matchLabels"].update({"kubernetes.io/metadata.name": "default"})),
    Mutation("pod-security-warn-only", "the binding only warns", "pod-security",
             lambda d: find(d, "ValidatingAdmissionPolicyBinding", "immich-pod-security")["spec"]
             .update(validationActions=["Warn"])),
    Mutation("pod-security-privileged-allowed", "the validation refusing privileged containers taken out",
             "pod-security", lambda d: find(d, "ValidatingAdmissionPolicy", "immich-pod-security")["spec"]
             ["validations"].pop(0)),
    Mutation("pod-security-no-enforce-label", "the namespace's enforce label taken out", "pod-security",
             lambda d: find(d, "Namespace", "immich")["metadata"]["labels"].pop("pod-security.kubernetes.io/enforce")),
    Mutation("proxy-aud-refused", "CF_ACCESS_AUD set to a value start.sh refuses (the proxy would never start)",
             "proxy-envoy", lambda d: find(d, "ConfigMap", "origin-proxy-settings")["data"]
             .update(CF_ACCESS_AUD="set me")),
    Mutation("secret-examples-kept", "the secrets/*.env.example files copied unchanged into the real ones",
             "placeholders", lambda d: fill_in(d, keep="secrets"), own_files=True),
    Mutation("access-team-placeholder-kept", "origin-proxy.env and cloudflared.yaml keep the example Access team "
             "and AUD tag", "placeholders", lambda d: fill_in(d, keep="team"), own_files=True),
    Mutation("redis-secret-example-kept", "secrets/redis.env.example copied unchanged into redis.env", "placeholders",
             lambda d: _fill_in_but_secret(d, "immich-redis-password"), own_files=True),
    Mutation("hostname-placeholder-kept", "cloudflared.yaml keeps photos.example.com", "placeholders",
             lambda d: fill_in(d, keep="hostname"), own_files=True),
]


def mutate(rendered: RenderedOverlay, mutation: Mutation) -> RenderedOverlay:
    documents = copy.deepcopy(rendered.documents)
    mutation.apply(documents)
    proxy_files = dict(rendered.proxy_files)
    if mutation.edit_proxy_files is not None:
        mutation.edit_proxy_files(proxy_files)
    return replace(rendered, text="", documents=documents, settings=dict(rendered.settings), proxy_files=proxy_files,
                   example_secrets=rendered.example_secrets and not mutation.own_files)


def killed(findings: list[Finding], mutation: Mutation) -> bool:
    return any(f.check == mutation.caught_by for f in findings)
