"""Service wiring: Services select pods and reach declared ports, probes use declared ports, every ConfigMap and
Secret a pod names exists, and the server (and the origin proxy) are pointed at the right Services."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from immich_conformance.stack_checks.endpoints import check_endpoint
from immich_conformance.stack_checks.findings import Finding
from immich_conformance.stack_checks.manifests import Manifests, PodTemplate, ref
from immich_conformance.stack_checks.pod_lookups import container_named, declared_port, effective_env, pod_port
from immich_conformance.stack_checks.stack_design import MACHINE_LEARNING, PROBES, PROXY, SERVER


class ConfigReference(NamedTuple):
    """A ConfigMap or Secret (and maybe one key of it) that a pod names, and where it names it."""

    kind: str
    name: Any
    key: Any
    optional: bool
    where: str


def check_service_selectors(m: Manifests) -> list[Finding]:
    findings = []
    for svc in m.of_kind("Service"):
        spec = svc.get("spec") or {}
        if spec.get("type") == "ExternalName":
            continue
        selector = spec.get("selector") or {}
        if not selector:
            findings.append(Finding("service-selectors", ref(svc), "has no selector"))
        elif not m.pods_selected_by(selector, m.namespace_of(svc)):
            findings.append(Finding("service-selectors", ref(svc), f"selector {selector} matches no pod template"))
    return findings


def check_service_target_ports(m: Manifests) -> list[Finding]:
    findings = []
    for svc in m.of_kind("Service"):
        spec = svc.get("spec") or {}
        pods = m.pods_selected_by(spec.get("selector") or {}, m.namespace_of(svc))
        for entry in spec.get("ports") or []:
            target = entry.get("targetPort", entry.get("port"))
            for pod in pods:
                if pod_port(pod, target, entry.get("protocol") or "TCP") is None:
                    findings.append(Finding("service-target-ports", ref(svc),
                                            f"port {entry.get('port')} targets {target!r}, which {pod.name} does "
                                            f"not declare"))
    return findings


def _env_references(container: dict[str, Any]) -> Iterator[ConfigReference]:
    where = f"container {container.get('name')}"
    for var in container.get("env") or []:
        source = var.get("valueFrom") or {}
        for field, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
            if field in source:
                key_ref = source[field]
                yield ConfigReference(kind, key_ref.get("name"), key_ref.get("key"), bool(key_ref.get("optional")),
                                      f"{where} env {var.get('name')}")
    for source in container.get("envFrom") or []:
        for field, kind in (("secretRef", "Secret"), ("configMapRef", "ConfigMap")):
            if field in source:
                yield ConfigReference(kind, source[field].get("name"), None, bool(source[field].get("optional")),
                                      f"{where} envFrom")


def _volume_references(volume: dict[str, Any]) -> Iterator[ConfigReference]:
    where = f"volume {volume.get('name')}"
    sources = [volume] + list((volume.get("projected") or {}).get("sources") or [])
    for source in sources:
        for field, kind, name_field in (("configMap", "ConfigMap", "name"), ("secret", "Secret", "secretName")):
            if field in source:
                item = source[field]
                name = item.get(name_field) or item.get("name")
                optional = bool(item.get("optional"))
                yield ConfigReference(kind, name, None, optional, where)
                for key_item in item.get("items") or []:
                    yield ConfigReference(kind, name, key_item.get("key"), optional, where)


def _pod_references(pod: PodTemplate) -> Iterator[ConfigReference]:
    for container in pod.containers():
        yield from _env_references(container)
    for volume in pod.spec.get("volumes") or []:
        yield from _volume_references(volume)


def _missing_reference(m: Manifests, pod: PodTemplate, reference: ConfigReference) -> Finding | None:
    kind, name, key, optional, where = reference
    if optional:
        return None
    data = m.config_data(kind, str(name), pod.namespace)
    if data is None:
        return Finding("config-references", pod.name, f"{where} names {kind} '{name}', which is not in the rendered "
                                                      f"stack")
    if key is not None and key not in data:
        return Finding("config-references", pod.name, f"{where} needs key '{key}' of {kind} '{name}', which has "
                                                      f"only {sorted(data)}")
    return None


def check_config_references(m: Manifests) -> list[Finding]:
    findings = []
    for pod in m.pod_templates():
        for reference in _pod_references(pod):
            finding = _missing_reference(m, pod, reference)
            if finding is not None:
                findings.append(finding)
    return findings


def check_probe_ports(m: Manifests) -> list[Finding]:
    findings = []
    for pod in m.pod_templates():
        for container in pod.containers(init=False):
            for probe_name in PROBES:
                probe = container.get(probe_name) or {}
                for handler in ("httpGet", "tcpSocket", "grpc"):
                    if handler in probe:
                        port = probe[handler].get("port")
                        if declared_port(container, port) is None:
                            findings.append(Finding("probe-ports", pod.name,
                                                    f"container {container.get('name')} {probe_name} uses port "
                                                    f"{port!r}, which the container does not declare"))
    return findings


def check_server_endpoints(m: Manifests) -> list[Finding]:
    pod = m.pod_template(SERVER)
    container = container_named(pod, SERVER) if pod else None
    if pod is None or container is None:
        return [Finding("server-endpoints", f"Deployment/{SERVER}", f"no {SERVER} container in the stack")]
    env = effective_env(m, pod, container)
    findings: list[Finding] = []
    if not env.get("DB_URL"):
        findings += _endpoint_from_env(m, pod, env, "DB_HOSTNAME", "DB_PORT", 5432, "postgres")
    if not env.get("REDIS_URL"):
        findings += _endpoint_from_env(m, pod, env, "REDIS_HOSTNAME", "REDIS_PORT", 6379, "valkey")
    url = env.get("IMMICH_MACHINE_LEARNING_URL")
    if not url:
        findings.append(Finding("server-endpoints", pod.name, "IMMICH_MACHINE_LEARNING_URL is not set"))
    else:
        parts = urlsplit(url)
        findings += check_endpoint(m, "server-endpoints", pod.name, f"IMMICH_MACHINE_LEARNING_URL {url}",
                                   parts.hostname or "", parts.port or 80, pod.namespace, MACHINE_LEARNING)
    return findings + _proxy_upstream(m)


def _proxy_upstream(m: Manifests) -> list[Finding]:
    """The origin proxy's UPSTREAM_ADDRESS reaches the server's port 2283."""
    proxy = m.pod_template(PROXY)
    proxy_container = proxy.containers(init=False)[0] if proxy and proxy.containers(init=False) else None
    if proxy is None or proxy_container is None:
        return [Finding("server-endpoints", f"Deployment/{PROXY}", "no origin proxy in the stack")]
    upstream = effective_env(m, proxy, proxy_container).get("UPSTREAM_ADDRESS") or ""
    host, _, port = upstream.rpartition(":")
    if not host or not port.isdigit():
        return [Finding("server-endpoints", proxy.name, f"UPSTREAM_ADDRESS {upstream!r} is not host:port")]
    return check_endpoint(m, "server-endpoints", proxy.name, f"UPSTREAM_ADDRESS {upstream}", host, int(port),
                          proxy.namespace, "immich-server", expect_port=2283)


def _endpoint_from_env(m: Manifests, pod: PodTemplate, env: dict[str, str | None], host_var: str, port_var: str,
                       default_port: int, image: str) -> list[Finding]:
    host = env.get(host_var)
    if not host:
        return [Finding("server-endpoints", pod.name, f"{host_var} is not set")]
    port_text = env.get(port_var) or str(default_port)
    if not port_text.isdigit():
        return [Finding("server-endpoints", pod.name, f"{port_var} {port_text!r} is not a port number")]
    return check_endpoint(m, "server-endpoints", pod.name, f"{host_var} {host}", host, int(port_text),
                          pod.namespace, image)
