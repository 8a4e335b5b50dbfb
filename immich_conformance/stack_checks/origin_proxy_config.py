"""The origin proxy's Envoy configuration as the pod runs it: the JWT requirement and the body limit.

start.sh (from the rendered `origin-proxy` ConfigMap) fills the overlay's settings into envoy.yaml, exactly as in the
pod, with Envoy itself left out; the filled-in configuration is then read for what the contract needs:

- every route that forwards to a cluster is covered by a jwt_authn rule requiring the Access provider (rules are
  taken in order, the first that matches decides), and jwt_authn is not switched off on any route;
- the provider requires `exp`, its issuer is `https://<CF_TEAM_DOMAIN>`, its audience is exactly `CF_ACCESS_AUD`,
  and its keys come from the team's own certs URL;
- every `max_request_bytes` is `immich_conformance.limits.MAX_BODY_BYTES`, the body-limit filter runs on every
  forwarding route, and is off only on a route that admits no request body (no Content-Length, no
  Transfer-Encoding).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from immich_conformance.limits import MAX_BODY_BYTES
from immich_conformance.stack_checks.findings import Finding
from immich_conformance.stack_checks.manifests import Manifests
from immich_conformance.stack_checks.pod_lookups import effective_env
from immich_conformance.stack_checks.stack_design import PROXY, PROXY_CONFIG_DIR

CHECK = "proxy-envoy"
JWT_FILTER = "envoy.filters.http.jwt_authn"
BODY_FILTERS = ("envoy.filters.http.body_size_limit", "envoy.filters.http.buffer")
ROUTER = "envoy.filters.http.router"
HCM = "envoy.filters.network.http_connection_manager"
JWKS_PATH = "/cdn-cgi/access/certs"
START_TIMEOUT_SECONDS = 30
BODY_HEADERS = ("content-length", "transfer-encoding")


def _problem(message: str) -> Finding:
    return Finding(CHECK, f"Deployment/{PROXY}", message)


def run_start_sh(start_sh: str, envoy_yaml: str, env: dict[str, str]) -> tuple[str | None, str]:
    """Run start.sh on the two files with `env`, Envoy replaced by `true`: (filled-in envoy.yaml, None) or
    (None, start.sh's complaint)."""
    with tempfile.TemporaryDirectory(prefix="immich-origin-proxy-") as tmp:
        config, render = Path(tmp) / "config", Path(tmp) / "render"
        config.mkdir()
        render.mkdir()
        (config / "start.sh").write_text(start_sh)
        (config / "envoy.yaml").write_text(envoy_yaml)
        run_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env, "RENDER_DIR": str(render),
                   "ENVOY_BIN": "true", "ORIGIN_PROXY_CHECK_ONLY": "1", "JWKS_CA_FILE": str(config / "start.sh")}
        done = subprocess.run(["/bin/sh", str(config / "start.sh")], env=run_env, capture_output=True, text=True,
                              timeout=START_TIMEOUT_SECONDS, check=False)
        rendered = render / "origin-proxy-envoy.yaml"
        if done.returncode != 0:
            return None, " ".join(done.stderr.split()) or f"start.sh exited with {done.returncode}"
        return rendered.read_text(), ""


def _named(items: list[dict[str, Any]] | None, name: str) -> dict[str, Any] | None:
    return next((i for i in items or [] if isinstance(i, dict) and i.get("name") == name), None)


def _connection_managers(config: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for listener in (config.get("static_resources") or {}).get("listeners") or []:
        for chain in listener.get("filter_chains") or []:
            for network_filter in chain.get("filters") or []:
                if network_filter.get("name") == HCM:
                    yield str(listener.get("name")), network_filter.get("typed_config") or {}


def _forwards(route: dict[str, Any]) -> bool:
    action = route.get("route") or {}
    return any(key in action for key in ("cluster", "weighted_clusters", "cluster_header", "cluster_specifier_plugin"))


def _routes(hcm: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for vhost in (hcm.get("route_config") or {}).get("virtual_hosts") or []:
        for route in vhost.get("routes") or []:
            yield vhost, route


def _disabled(holder: dict[str, Any], filter_name: str) -> bool:
    config = (holder.get("typed_per_filter_config") or {}).get(filter_name)
    return isinstance(config, dict) and (config.get("disabled") is True or "requirement_name" in config)


def _covers(rule: dict[str, Any], route: dict[str, Any]) -> bool:
    """Every request the route matches also matches the rule."""
    if any(rule.get(k) for k in ("headers", "query_parameters", "grpc", "dynamic_metadata")):
        return False
    if rule.get("case_sensitive") is False:
        rule = {k: str(v).lower() if k in ("prefix", "path") else v for k, v in rule.items()}
    if "prefix" in rule:
        prefix = str(rule["prefix"])
        if prefix == "/":
            return True
        path = route.get("path") or route.get("prefix")
        return route.get("case_sensitive") is not False and path is not None and str(path).startswith(prefix)
    if "path" in rule:
        return route.get("path") == rule["path"] and route.get("case_sensitive") is not False
    return False


def _may_overlap(rule: dict[str, Any], route: dict[str, Any]) -> bool:
    rule_path = rule.get("prefix", rule.get("path"))
    route_path = route.get("prefix", route.get("path"))
    if rule_path is None or route_path is None:
        return True
    a, b = str(rule_path).lower(), str(route_path).lower()
    return a.startswith(b) or b.startswith(a)


def _shown(match: dict[str, Any]) -> str:
    shown = [f"{k}: {v}" for k, v in match.items() if k in ("prefix", "path", "safe_regex", "path_separated_prefix")]
    return ", ".join(shown) or str(match)


def _check_jwt(listener: str, hcm: dict[str, Any], team: str, aud: str) -> list[Finding]:
    found: list[Finding] = []
    filters = hcm.get("http_filters") or []
    jwt = _named(filters, JWT_FILTER)
    if jwt is None:
        return [_problem(f"listener {listener} forwards to Immich without the {JWT_FILTER} filter")]
    names = [f.get("name") for f in filters]
    if ROUTER in names and names.index(JWT_FILTER) > names.index(ROUTER):
        found.append(_problem(f"listener {listener}: {JWT_FILTER} comes after the router, so it never runs"))
    config = jwt.get("typed_config") or {}
    if config.get("bypass_cors_preflight"):
        found.append(_problem("jwt_authn bypass_cors_preflight lets OPTIONS requests through without a token"))
    providers = config.get("providers") or {}
    for name, provider in providers.items():
        where = f"jwt_authn provider {name}"
        if provider.get("require_expiration") is not True:
            found.append(_problem(f"{where} does not set require_expiration: true: a token without exp would never "
                                  f"expire"))
        if provider.get("issuer") != f"https://{team}":
            found.append(_problem(f"{where} has issuer {provider.get('issuer')!r}, not https://{team} (CF_TEAM_DOMAIN "
                                  f"of origin-proxy.env)"))
        if provider.get("audiences") != [aud]:
            found.append(_problem(f"{where} has audiences {provider.get('audiences')!r}, not [{aud!r}] (CF_ACCESS_AUD "
                                  f"of origin-proxy.env)"))
        uri = str(((provider.get("remote_jwks") or {}).get("http_uri") or {}).get("uri", ""))
        parts = urlsplit(uri)
        if parts.scheme != "https" or parts.hostname != team or parts.path != JWKS_PATH:
            found.append(_problem(f"{where} takes its keys from {uri or 'no remote JWKS'}, not "
                                  f"https://{team}{JWKS_PATH}"))
    rules = config.get("rules") or []
    for vhost, route in _routes(hcm):
        if not _forwards(route):
            continue
        match = route.get("match") or {}
        subject = f"route {{{_shown(match)}}}"
        if _disabled(vhost, JWT_FILTER) or _disabled(route, JWT_FILTER):
            found.append(_problem(f"{subject} switches {JWT_FILTER} off: it reaches Immich without a token"))
            continue
        for index, rule in enumerate(rules):
            rule_match = rule.get("match") or {}
            if not _may_overlap(rule_match, match):
                continue
            requires = rule.get("requires") or {}
            if requires.get("provider_name") not in providers or set(requires) != {"provider_name"}:
                found.append(_problem(f"jwt_authn rule {index} ({_shown(rule_match)}) requires "
                                      f"{requires or 'nothing'}, so {subject} can reach Immich without an Access "
                                      f"token"))
                break
            if _covers(rule_match, match):
                break
        else:
            found.append(_problem(f"no jwt_authn rule covers {subject}: it reaches Immich without an Access token "
                                  f"(the rule must match every path: prefix /)"))
    return found


def _body_free(match: dict[str, Any]) -> bool:
    """The route admits only requests without a body: Content-Length and Transfer-Encoding both absent."""
    absent = {str(h.get("name", "")).lower() for h in match.get("headers") or []
              if h.get("present_match") is True and h.get("invert_match") is True}
    return all(h in absent for h in BODY_HEADERS)


def _byte_limits(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "max_request_bytes":
                yield path or "(top)", value
            yield from _byte_limits(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _byte_limits(value, f"{path}[{i}]")


def _check_body_limit(listener: str, hcm: dict[str, Any]) -> list[Finding]:
    found: list[Finding] = []
    filters = hcm.get("http_filters") or []
    body = next((f for f in filters if f.get("name") in BODY_FILTERS), None)
    if body is None:
        return [_problem(f"listener {listener} forwards to Immich with no body-limit filter "
                         f"({' or '.join(BODY_FILTERS)})")]
    name = str(body.get("name"))
    for vhost, route in _routes(hcm):
        if not _forwards(route):
            continue
        match = route.get("match") or {}
        if (_disabled(vhost, name) or _disabled(route, name)) and not _body_free(match):
            found.append(_problem(f"route {{{_shown(match)}}} switches {name} off but admits request bodies: uploads "
                                  f"there have no {MAX_BODY_BYTES}-byte limit"))
    return found


def check_origin_proxy_envoy(m: Manifests) -> list[Finding]:
    pod = m.pod_template(PROXY)
    if pod is None or not pod.containers(init=False):
        return [_problem("no origin proxy in the stack")]
    container = pod.containers(init=False)[0]
    env = {k: v for k, v in effective_env(m, pod, container).items() if v is not None}
    mount = next((vm for vm in container.get("volumeMounts") or []
                  if str(vm.get("mountPath", "")).rstrip("/") == PROXY_CONFIG_DIR), None)
    config_map = ((pod.volume(mount.get("name")) if mount else None) or {}).get("configMap") or {}
    files = m.config_data("ConfigMap", config_map.get("name"), pod.namespace) or {}
    if "start.sh" not in files or "envoy.yaml" not in files:
        return [_problem(f"no ConfigMap with start.sh and envoy.yaml is mounted at {PROXY_CONFIG_DIR}")]
    text, complaint = run_start_sh(str(files["start.sh"]), str(files["envoy.yaml"]), env)
    if text is None:
        return [_problem(f"start.sh refuses the overlay's settings: {complaint}")]
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as err:
        return [_problem(f"envoy.yaml filled in by start.sh is not valid YAML: {' '.join(str(err).split())}")]
    if not isinstance(config, dict):
        return [_problem("envoy.yaml filled in by start.sh is not a mapping")]
    found: list[Finding] = []
    for where, value in _byte_limits(config):
        if str(value) != str(MAX_BODY_BYTES):
            found.append(_problem(f"{where}.max_request_bytes is {value}, the contract says {MAX_BODY_BYTES} "
                                  f"(immich_conformance/limits.py)"))
    forwarding = [(listener, hcm) for listener, hcm in _connection_managers(config)
                  if any(_forwards(route) for _, route in _routes(hcm))]
    if not forwarding:
        return found + [_problem("envoy.yaml forwards nothing to Immich")]
    team, aud = env.get("CF_TEAM_DOMAIN", ""), env.get("CF_ACCESS_AUD", "")
    for listener, hcm in forwarding:
        found += _check_jwt(listener, hcm, team, aud)
        found += _check_body_limit(listener, hcm)
    return found
