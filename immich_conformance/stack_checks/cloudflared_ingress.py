"""The tunnel's ingress: cloudflared reads its rules from a ConfigMap, sends every routed hostname to the origin
proxy only (behind Cloudflare Access, with the team and audience the proxy checks) and ends in a catch-all status."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import yaml

from immich_conformance.stack_checks.endpoints import check_endpoint, service_name_of_host
from immich_conformance.stack_checks.findings import Finding
from immich_conformance.stack_checks.manifests import Manifests, PodTemplate
from immich_conformance.stack_checks.pod_lookups import effective_env
from immich_conformance.stack_checks.stack_design import PROXY

CHECK = "cloudflared-ingress"
CLOUDFLARED_IMAGE = "cloudflared"
ACCESS_TEAM_SUFFIX = ".cloudflareaccess.com"
CATCH_ALL_STATUS = re.compile(r"http_status:[1-5][0-9]{2}")
Settings = dict[str, str | None]


# ---------------------------------------------------------------- reading the configuration


def _config_path(container: dict[str, Any]) -> str | None:
    """The file named by --config (the last one given), None when there is none."""
    args = [str(a) for a in (container.get("command") or []) + (container.get("args") or [])]
    config_path = None
    for i, arg in enumerate(args):
        if arg == "--config" and i + 1 < len(args):
            config_path = args[i + 1]
        elif arg.startswith("--config="):
            config_path = arg.split("=", 1)[1]
    return config_path


def _config_map_key(source: dict[str, Any], relative: str) -> Any:
    """The ConfigMap key a file of a configMap volume comes from (its items may map keys to other paths)."""
    key: Any = relative
    for item in source.get("items") or []:
        if item.get("path") == relative:
            key = item.get("key")
    return key


def _config_from_volume(m: Manifests, pod: PodTemplate, volume: dict[str, Any], config_path: str,
                        relative: str) -> tuple[Any, str | None]:
    source = volume.get("configMap")
    if source is None:
        return None, f"--config {config_path} is not from a ConfigMap"
    key = _config_map_key(source, relative)
    data = m.config_data("ConfigMap", source.get("name"), pod.namespace)
    if data is None or key not in data:
        return None, f"--config {config_path}: ConfigMap '{source.get('name')}' has no key '{key}'"
    try:
        return yaml.safe_load(str(data[key])), None
    except yaml.YAMLError as err:
        return None, f"--config {config_path} is not valid YAML: {err}"


def _cloudflared_config(m: Manifests, pod: PodTemplate, container: dict[str, Any]) -> tuple[Any, str | None]:
    """(parsed configuration, problem) for a cloudflared container, from the ConfigMap behind --config."""
    config_path = _config_path(container)
    if config_path is None:
        return None, "runs without --config: its ingress would come from elsewhere"
    for mount in container.get("volumeMounts") or []:
        mount_path = str(mount.get("mountPath", "")).rstrip("/")
        if config_path.startswith(mount_path + "/"):
            volume = pod.volume(mount.get("name")) or {}
            return _config_from_volume(m, pod, volume, config_path, config_path[len(mount_path) + 1:])
    return None, f"--config {config_path} is not on a mounted volume"


# ---------------------------------------------------------------- rules of the whole configuration


def _has_ingress_rules(config: Any) -> bool:
    return isinstance(config, dict) and isinstance(config.get("ingress"), list) and bool(config["ingress"])


def _warp_routing(config: dict[str, Any]) -> list[str]:
    if (config.get("warp-routing") or {}).get("enabled"):
        return ["warp-routing is enabled: the tunnel would route to private networks, not only the proxy"]
    return []


def _top_level_targets(config: dict[str, Any]) -> list[str]:
    return [f"top-level '{top}' sends traffic somewhere other than the ingress rules"
            for top in ("url", "hello-world", "bastion") if config.get(top)]


def _catch_all_last(rules: list[Any]) -> list[str]:
    last = rules[-1] if isinstance(rules[-1], dict) else {}
    if last.get("hostname") or last.get("path") or not CATCH_ALL_STATUS.fullmatch(str(last.get("service"))):
        return [f"the last ingress rule must be a catch-all http_status (e.g. http_status:404), not {last}"]
    return []


# ---------------------------------------------------------------- rules of each routed hostname


def _proxy_target(service: str, namespace: str) -> tuple[str, int] | None:
    """(host, port) when an ingress service is the origin proxy over plain http in the cluster, else None."""
    url = urlsplit(service)
    host, port = url.hostname or "", url.port or (443 if url.scheme == "https" else 80)
    if url.scheme != "http" or service_name_of_host(host, namespace) != PROXY:
        return None
    return host, port


def _access(rule: dict[str, Any]) -> dict[str, Any]:
    return ((rule.get("originRequest") or {}).get("access")) or {}


def _access_required(rule: dict[str, Any]) -> list[str]:
    if _access(rule).get("required") is not True:
        return [f"ingress rule {rule.get('hostname')!r} does not set originRequest.access.required: true"]
    return []


def _access_team(rule: dict[str, Any], settings: Settings) -> list[str]:
    team = _access(rule).get("teamName")
    if settings and team and f"{team}{ACCESS_TEAM_SUFFIX}" != settings.get("CF_TEAM_DOMAIN"):
        return [f"access teamName '{team}' does not match the origin proxy's CF_TEAM_DOMAIN "
                f"'{settings.get('CF_TEAM_DOMAIN')}'"]
    return []


def _access_audience(rule: dict[str, Any], settings: Settings) -> list[str]:
    auds = _access(rule).get("audTag") or []
    if settings and settings.get("CF_ACCESS_AUD") not in auds:
        return [f"access audTag {auds} does not contain the origin proxy's CF_ACCESS_AUD"]
    return []


def _routed_rules(m: Manifests, pod: PodTemplate, rules: list[Any], settings: Settings) -> list[Finding]:
    findings: list[Finding] = []
    proxied = 0
    for rule in rules:
        service = str((rule or {}).get("service"))
        if CATCH_ALL_STATUS.fullmatch(service):
            continue
        target = _proxy_target(service, pod.namespace)
        if target is None:
            findings.append(Finding(CHECK, pod.name, f"ingress rule {rule.get('hostname')!r} goes to {service}: the "
                                                     f"only allowed target is the origin proxy (http://{PROXY}:8080)"))
            continue
        proxied += 1
        host, port = target
        findings += check_endpoint(m, CHECK, pod.name, f"ingress to {service}", host, port, pod.namespace, "envoy",
                                   expect_port=8080)
        problems = _access_required(rule) + _access_team(rule, settings) + _access_audience(rule, settings)
        findings += [Finding(CHECK, pod.name, problem) for problem in problems]
    if proxied == 0:
        findings.append(Finding(CHECK, pod.name, "no ingress rule goes to the origin proxy"))
    return findings


# ---------------------------------------------------------------- the check


def _proxy_settings(m: Manifests) -> Settings:
    """The origin proxy's environment (what Access must agree with), {} when there is no proxy."""
    proxy = m.pod_template(PROXY)
    proxy_containers = proxy.containers(init=False) if proxy else []
    return effective_env(m, proxy, proxy_containers[0]) if proxy and proxy_containers else {}


def _tunnel(m: Manifests, pod: PodTemplate, container: dict[str, Any], settings: Settings) -> list[Finding]:
    config, error = _cloudflared_config(m, pod, container)
    if error:
        return [Finding(CHECK, pod.name, error)]
    if not _has_ingress_rules(config):
        return [Finding(CHECK, pod.name, "its configuration has no ingress rules")]
    rules = config["ingress"]
    problems = _warp_routing(config) + _top_level_targets(config) + _catch_all_last(rules)
    return [Finding(CHECK, pod.name, problem) for problem in problems] + _routed_rules(m, pod, rules, settings)


def check_cloudflared_ingress(m: Manifests) -> list[Finding]:
    tunnels = [(pod, c) for pod in m.pod_templates() for c in pod.containers(init=False)
               if CLOUDFLARED_IMAGE in str(c.get("image", ""))]
    if not tunnels:
        return [Finding(CHECK, "cloudflared", "no cloudflared container in the stack")]
    settings = _proxy_settings(m)
    findings: list[Finding] = []
    for pod, container in tunnels:
        findings += _tunnel(m, pod, container, settings)
    return findings
