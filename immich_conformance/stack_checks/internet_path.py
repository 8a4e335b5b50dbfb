"""What reaches the stack from outside: only the server's NodePort (the LAN) and no ingress route, host port or
host network; and the origin proxy the tunnel ends at, run with the stack's own files and settings. The tunnel's
ingress rules are cloudflared_ingress's checks."""

from __future__ import annotations

from immich_conformance.limits import MAX_BODY_BYTES
from immich_conformance.stack_checks.findings import Finding
from immich_conformance.stack_checks.manifests import EXPOSED_SERVICE_TYPES, Manifests, ref
from immich_conformance.stack_checks.pod_lookups import effective_env, name_of
from immich_conformance.stack_checks.stack_design import PROXY, PROXY_CONFIG_DIR, SERVER


def _exposed_services(m: Manifests) -> list[Finding]:
    findings = []
    for svc in m.of_kind("Service"):
        spec = svc.get("spec") or {}
        pods = m.pods_selected_by(spec.get("selector") or {}, m.namespace_of(svc))
        only_server = bool(pods) and all(name_of(p.owner) == SERVER for p in pods)
        if spec.get("type") in EXPOSED_SERVICE_TYPES and not only_server:
            findings.append(Finding("exposure", ref(svc), f"is {spec.get('type')}: only {SERVER} may be reachable "
                                                          f"from outside the cluster"))
        if spec.get("externalIPs") and not only_server:
            findings.append(Finding("exposure", ref(svc), "has externalIPs: only the Immich server may be exposed"))
    return findings


def _host_exposure(m: Manifests) -> list[Finding]:
    findings = []
    for pod in m.pod_templates():
        if pod.spec.get("hostNetwork"):
            findings.append(Finding("exposure", pod.name, "uses hostNetwork"))
        for container in pod.containers():
            for port in container.get("ports") or []:
                if port.get("hostPort"):
                    findings.append(Finding("exposure", pod.name, f"container {container.get('name')} opens hostPort "
                                                                  f"{port['hostPort']}"))
    return findings


def check_exposure(m: Manifests) -> list[Finding]:
    findings = _exposed_services(m)
    server_service = m.service(SERVER)
    if server_service is None or (server_service.get("spec") or {}).get("type") != "NodePort":
        findings.append(Finding("exposure", f"Service/{SERVER}", "must exist and be a NodePort (the LAN path)"))
    for kind in ("Ingress", "Gateway", "HTTPRoute", "TCPRoute", "TLSRoute"):
        for doc in m.of_kind(kind):
            findings.append(Finding("exposure", ref(doc), "the stack has no ingress controller route: the internet "
                                                          "comes in through cloudflared only"))
    return findings + _host_exposure(m)


def check_proxy_config(m: Manifests, proxy_files: dict[str, str] | None = None) -> list[Finding]:
    pod = m.pod_template(PROXY)
    if pod is None or not pod.containers(init=False):
        return [Finding("proxy-config", f"Deployment/{PROXY}", "no origin proxy in the stack")]
    container = pod.containers(init=False)[0]
    findings = []
    command = [str(c) for c in (container.get("command") or []) + (container.get("args") or [])]
    if f"{PROXY_CONFIG_DIR}/start.sh" not in command:
        findings.append(Finding("proxy-config", pod.name, f"does not run {PROXY_CONFIG_DIR}/start.sh (command "
                                                          f"{command})"))
    mount = next((vm for vm in container.get("volumeMounts") or []
                  if str(vm.get("mountPath", "")).rstrip("/") == PROXY_CONFIG_DIR), None)
    volume = pod.volume(mount.get("name")) if mount else None
    config_map = (volume or {}).get("configMap")
    if config_map is None:
        findings.append(Finding("proxy-config", pod.name, f"no ConfigMap is mounted at {PROXY_CONFIG_DIR}"))
    else:
        data = m.config_data("ConfigMap", config_map.get("name"), pod.namespace) or {}
        for name, text in (proxy_files or {}).items():
            if data.get(name) != text:
                findings.append(Finding("proxy-config", pod.name, f"{PROXY_CONFIG_DIR}/{name} is not the file "
                                                                  f"stack/base/origin-proxy/{name}"))
    env = effective_env(m, pod, container)
    for key in ("CF_TEAM_DOMAIN", "CF_ACCESS_AUD", "UPSTREAM_ADDRESS"):
        if not env.get(key):
            findings.append(Finding("proxy-config", pod.name, f"{key} is not set (origin-proxy-settings)"))
    if env.get("MAX_BODY_BYTES", str(MAX_BODY_BYTES)) != str(MAX_BODY_BYTES):
        findings.append(Finding("proxy-config", pod.name, f"MAX_BODY_BYTES is {env.get('MAX_BODY_BYTES')}, the "
                                                          f"contract says {MAX_BODY_BYTES}"))
    return findings
