"""Seeded mistakes: each one changes a rendered stack the way a real edit could go wrong, and names the check that
must catch it. A mutation the checks do not catch shows a hole in the static proof."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

from immich_conformance.stack_checks.crossref import Finding
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
    Mutation("release-drift", "machine learning on another Immich release than the server", "images-pinned",
             lambda d: _image_tag(d, "immich-machine-learning", "ghcr.io/immich-app/immich-machine-learning:v3.0.2")),
    Mutation("password-inline", "the database password written into the manifest", "secrets-not-inline",
             lambda d: _replace_source(env_var(d, "immich-server", "DB_PASSWORD"), {"value": "hunter2"})),
]


def mutate(rendered: RenderedOverlay, mutation: Mutation) -> RenderedOverlay:
    documents = copy.deepcopy(rendered.documents)
    mutation.apply(documents)
    return RenderedOverlay(rendered.name, "", documents, dict(rendered.settings), dict(rendered.proxy_files))


def killed(findings: list[Finding], mutation: Mutation) -> bool:
    return any(f.check == mutation.caught_by for f in findings)
