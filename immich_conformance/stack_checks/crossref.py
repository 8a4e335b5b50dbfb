"""Cross-reference checks on the rendered stack: what schema validation and checkov cannot see.

Each check takes the rendered objects and returns findings (an empty list when it holds). They know the
stack's design: the Immich server is the only thing reachable from outside the cluster (its NodePort, for
the LAN), the internet comes in only through cloudflared and the origin proxy, and the photo library is
the NAS, given to the server by a hostPath of type Directory at /data.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import yaml

from immich_conformance.limits import MAX_BODY_BYTES
from immich_conformance.stack_checks.manifests import EXPOSED_SERVICE_TYPES, Manifests, PodTemplate, ref

SERVER = "immich-server"
MACHINE_LEARNING = "immich-machine-learning"
PROXY = "origin-proxy"
PROXY_CONFIG_DIR = "/etc/origin-proxy"
CLOUDFLARED_IMAGE = "cloudflared"
MEDIA_LOCATION = "/data"
ACCESS_TEAM_SUFFIX = ".cloudflareaccess.com"
PROBES = ("startupProbe", "readinessProbe", "livenessProbe")
SECRET_NAME_PATTERN = re.compile(r"PASSWORD|TOKEN|SECRET|PRIVATE_KEY", re.IGNORECASE)
DIGEST_PATTERN = re.compile(r"sha256:[0-9a-f]{64}")
CATCH_ALL_STATUS = re.compile(r"http_status:[1-5][0-9]{2}")
# Third-party images Immich's own docker-compose.yml pins by digest (stack/base/kustomization.yaml keeps them).
DIGEST_PINNED = ("ghcr.io/immich-app/postgres", "docker.io/valkey/valkey")


@dataclass(frozen=True)
class Finding:
    check: str
    subject: str
    message: str

    def __str__(self) -> str:
        return f"[{self.check}] {self.subject}: {self.message}"


# ---------------------------------------------------------------- helpers


def _name(doc: dict[str, Any]) -> str:
    return str((doc.get("metadata") or {}).get("name"))


def _container(pod: PodTemplate, name: str) -> dict[str, Any] | None:
    return next((c for c in pod.containers() if c.get("name") == name), None)


def _declares_port(container: dict[str, Any], port: int | str, protocol: str = "TCP") -> int | None:
    """The container port number that `port` (a number or a port name) means, None if not declared."""
    for declared in container.get("ports") or []:
        if (declared.get("protocol") or "TCP") != protocol:
            continue
        if (isinstance(port, str) and declared.get("name") == port) or \
                (isinstance(port, int) and declared.get("containerPort") == port):
            return int(declared["containerPort"])
    return None


def _pod_port(pod: PodTemplate, port: int | str, protocol: str = "TCP") -> int | None:
    for container in pod.containers(init=False):
        found = _declares_port(container, port, protocol)
        if found is not None:
            return found
    return None


def split_image(image: str) -> tuple[str, str | None, str | None]:
    """(name, tag, digest) of an image reference."""
    rest, _, digest = image.partition("@")
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = rest.rsplit(":", 1)
        return name, tag, digest or None
    return rest, None, digest or None


def effective_env(m: Manifests, pod: PodTemplate, container: dict[str, Any]) -> dict[str, str | None]:
    """The container's environment as far as the manifests say: literal and ConfigMap values; None for Secret
    values and for references that do not resolve."""
    env: dict[str, str | None] = {}
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix") or ""
        if source.get("configMapRef"):
            data = m.config_data("ConfigMap", source["configMapRef"].get("name"), pod.namespace) or {}
            env.update({prefix + k: str(v) for k, v in data.items()})
        elif source.get("secretRef"):
            data = m.config_data("Secret", source["secretRef"].get("name"), pod.namespace) or {}
            env.update({prefix + k: None for k in data})
    for var in container.get("env") or []:
        name = var.get("name")
        if "value" in var:
            env[name] = str(var["value"])
        elif (var.get("valueFrom") or {}).get("configMapKeyRef"):
            key_ref = var["valueFrom"]["configMapKeyRef"]
            data = m.config_data("ConfigMap", key_ref.get("name"), pod.namespace) or {}
            value = data.get(key_ref.get("key"))
            env[name] = None if value is None else str(value)
        else:
            env[name] = None
    return env


def _service_host(host: str, namespace: str) -> str | None:
    """The Service name an in-cluster host name means (name, name.ns, name.ns.svc[.cluster.local])."""
    parts = host.split(".")
    if len(parts) == 1:
        return parts[0]
    if parts[1] == namespace and (len(parts) == 2 or parts[2:] in (["svc"], ["svc", "cluster", "local"])):
        return parts[0]
    return None


def _service_backends(m: Manifests, svc: dict[str, Any], port: int) -> list[tuple[PodTemplate, int | None]]:
    """For a Service port number: each selected pod and the container port it reaches (None: not declared)."""
    for entry in (svc.get("spec") or {}).get("ports") or []:
        if entry.get("port") == port:
            target = entry.get("targetPort", entry.get("port"))
            protocol = entry.get("protocol") or "TCP"
            selector = (svc.get("spec") or {}).get("selector") or {}
            pods = m.pods_selected_by(selector, m.namespace_of(svc))
            return [(pod, _pod_port(pod, target, protocol)) for pod in pods]
    return []


def _check_endpoint(m: Manifests, check: str, subject: str, what: str, host: str, port: int, namespace: str,
                    expect_image: str, expect_port: int | None = None) -> list[Finding]:
    svc_name = _service_host(host, namespace)
    svc = m.service(svc_name, namespace) if svc_name else None
    if svc is None:
        return [Finding(check, subject, f"{what} names '{host}', which is not a Service in namespace {namespace}")]
    backends = _service_backends(m, svc, port)
    if not backends:
        ports = [p.get("port") for p in (svc.get("spec") or {}).get("ports") or []]
        return [Finding(check, subject, f"{what} uses port {port}, but Service {svc_name} has ports {ports} "
                                        f"(or selects no pod)")]
    findings = []
    for pod, container_port in backends:
        images = [c.get("image", "") for c in pod.containers(init=False)]
        if not any(expect_image in image for image in images):
            findings.append(Finding(check, subject, f"{what} reaches {pod.name} (images {images}) through Service "
                                                    f"{svc_name}, not a pod running {expect_image}"))
        if container_port is None or (expect_port is not None and container_port != expect_port):
            findings.append(Finding(check, subject, f"{what}: Service {svc_name} port {port} does not reach "
                                                    f"{'a declared port' if expect_port is None else expect_port} "
                                                    f"of {pod.name}"))
    return findings


# ---------------------------------------------------------------- checks


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
                if _pod_port(pod, target, entry.get("protocol") or "TCP") is None:
                    findings.append(Finding("service-target-ports", ref(svc),
                                            f"port {entry.get('port')} targets {target!r}, which {pod.name} does "
                                            f"not declare"))
    return findings


def check_config_references(m: Manifests) -> list[Finding]:
    findings = []

    def need(pod: PodTemplate, kind: str, name: str | None, key: str | None, optional: bool, where: str) -> None:
        if optional:
            return
        data = m.config_data(kind, str(name), pod.namespace)
        if data is None:
            findings.append(Finding("config-references", pod.name, f"{where} names {kind} '{name}', which is not in "
                                                                   f"the rendered stack"))
        elif key is not None and key not in data:
            findings.append(Finding("config-references", pod.name, f"{where} needs key '{key}' of {kind} '{name}', "
                                                                   f"which has only {sorted(data)}"))

    for pod in m.pod_templates():
        for container in pod.containers():
            where = f"container {container.get('name')}"
            for var in container.get("env") or []:
                source = var.get("valueFrom") or {}
                for field, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
                    if field in source:
                        key_ref = source[field]
                        need(pod, kind, key_ref.get("name"), key_ref.get("key"), bool(key_ref.get("optional")),
                             f"{where} env {var.get('name')}")
            for source in container.get("envFrom") or []:
                for field, kind in (("secretRef", "Secret"), ("configMapRef", "ConfigMap")):
                    if field in source:
                        need(pod, kind, source[field].get("name"), None, bool(source[field].get("optional")),
                             f"{where} envFrom")
        for volume in pod.spec.get("volumes") or []:
            sources = [volume] + list((volume.get("projected") or {}).get("sources") or [])
            for source in sources:
                for field, kind, name_field in (("configMap", "ConfigMap", "name"), ("secret", "Secret", "secretName")):
                    if field in source:
                        item = source[field]
                        name = item.get(name_field) or item.get("name")
                        optional = bool(item.get("optional"))
                        need(pod, kind, name, None, optional, f"volume {volume.get('name')}")
                        for key_item in item.get("items") or []:
                            need(pod, kind, name, key_item.get("key"), optional, f"volume {volume.get('name')}")
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
                        if _declares_port(container, port) is None:
                            findings.append(Finding("probe-ports", pod.name,
                                                    f"container {container.get('name')} {probe_name} uses port "
                                                    f"{port!r}, which the container does not declare"))
    return findings


def _cloudflared_config(m: Manifests, pod: PodTemplate, container: dict[str, Any]) -> tuple[Any, str | None]:
    """(parsed configuration, problem) for a cloudflared container, from the ConfigMap behind --config."""
    args = [str(a) for a in (container.get("command") or []) + (container.get("args") or [])]
    config_path = None
    for i, arg in enumerate(args):
        if arg == "--config" and i + 1 < len(args):
            config_path = args[i + 1]
        elif arg.startswith("--config="):
            config_path = arg.split("=", 1)[1]
    if config_path is None:
        return None, "runs without --config: its ingress would come from elsewhere"
    for mount in container.get("volumeMounts") or []:
        mount_path = str(mount.get("mountPath", "")).rstrip("/")
        if config_path.startswith(mount_path + "/"):
            relative = config_path[len(mount_path) + 1:]
            volume = pod.volume(mount.get("name")) or {}
            source = volume.get("configMap")
            if source is None:
                return None, f"--config {config_path} is not from a ConfigMap"
            key = relative
            for item in source.get("items") or []:
                if item.get("path") == relative:
                    key = item.get("key")
            data = m.config_data("ConfigMap", source.get("name"), pod.namespace)
            if data is None or key not in data:
                return None, f"--config {config_path}: ConfigMap '{source.get('name')}' has no key '{key}'"
            try:
                return yaml.safe_load(str(data[key])), None
            except yaml.YAMLError as err:
                return None, f"--config {config_path} is not valid YAML: {err}"
    return None, f"--config {config_path} is not on a mounted volume"


def check_cloudflared_ingress(m: Manifests) -> list[Finding]:
    findings: list[Finding] = []
    tunnels = [(pod, c) for pod in m.pod_templates() for c in pod.containers(init=False)
               if CLOUDFLARED_IMAGE in str(c.get("image", ""))]
    if not tunnels:
        return [Finding("cloudflared-ingress", "cloudflared", "no cloudflared container in the stack")]
    proxy = m.pod_template(PROXY)
    proxy_containers = proxy.containers(init=False) if proxy else []
    settings = effective_env(m, proxy, proxy_containers[0]) if proxy and proxy_containers else {}
    for pod, container in tunnels:
        def problem(message: str, subject: str = pod.name) -> None:
            findings.append(Finding("cloudflared-ingress", subject, message))

        config, error = _cloudflared_config(m, pod, container)
        if error:
            problem(error)
            continue
        if not isinstance(config, dict) or not isinstance(config.get("ingress"), list) or not config["ingress"]:
            problem("its configuration has no ingress rules")
            continue
        if (config.get("warp-routing") or {}).get("enabled"):
            problem("warp-routing is enabled: the tunnel would route to private networks, not only the proxy")
        for top in ("url", "hello-world", "bastion"):
            if config.get(top):
                problem(f"top-level '{top}' sends traffic somewhere other than the ingress rules")
        rules = config["ingress"]
        last = rules[-1] if isinstance(rules[-1], dict) else {}
        if last.get("hostname") or last.get("path") or not CATCH_ALL_STATUS.fullmatch(str(last.get("service"))):
            problem(f"the last ingress rule must be a catch-all http_status (e.g. http_status:404), not {last}")
        proxied = 0
        for rule in rules:
            service = str((rule or {}).get("service"))
            if CATCH_ALL_STATUS.fullmatch(service):
                continue
            url = urlsplit(service)
            host, port = url.hostname or "", url.port or (443 if url.scheme == "https" else 80)
            if url.scheme != "http" or _service_host(host, pod.namespace) != PROXY:
                problem(f"ingress rule {rule.get('hostname')!r} goes to {service}: the only allowed target is the "
                        f"origin proxy (http://{PROXY}:8080)")
                continue
            proxied += 1
            findings.extend(_check_endpoint(m, "cloudflared-ingress", pod.name, f"ingress to {service}", host, port,
                                            pod.namespace, "envoy", expect_port=8080))
            access = ((rule.get("originRequest") or {}).get("access")) or {}
            if access.get("required") is not True:
                problem(f"ingress rule {rule.get('hostname')!r} does not set originRequest.access.required: true")
            team, auds = access.get("teamName"), access.get("audTag") or []
            if settings and team and f"{team}{ACCESS_TEAM_SUFFIX}" != settings.get("CF_TEAM_DOMAIN"):
                problem(f"access teamName '{team}' does not match the origin proxy's CF_TEAM_DOMAIN "
                        f"'{settings.get('CF_TEAM_DOMAIN')}'")
            if settings and settings.get("CF_ACCESS_AUD") not in auds:
                problem(f"access audTag {auds} does not contain the origin proxy's CF_ACCESS_AUD")
        if proxied == 0:
            problem("no ingress rule goes to the origin proxy")
    return findings


def check_exposure(m: Manifests) -> list[Finding]:
    findings = []
    server_service = m.service(SERVER)
    for svc in m.of_kind("Service"):
        spec = svc.get("spec") or {}
        pods = m.pods_selected_by(spec.get("selector") or {}, m.namespace_of(svc))
        only_server = bool(pods) and all(_name(p.owner) == SERVER for p in pods)
        if spec.get("type") in EXPOSED_SERVICE_TYPES and not only_server:
            findings.append(Finding("exposure", ref(svc), f"is {spec.get('type')}: only {SERVER} may be reachable "
                                                          f"from outside the cluster"))
        if spec.get("externalIPs") and not only_server:
            findings.append(Finding("exposure", ref(svc), "has externalIPs: only the Immich server may be exposed"))
    if server_service is None or (server_service.get("spec") or {}).get("type") != "NodePort":
        findings.append(Finding("exposure", f"Service/{SERVER}", "must exist and be a NodePort (the LAN path)"))
    for kind in ("Ingress", "Gateway", "HTTPRoute", "TCPRoute", "TLSRoute"):
        for doc in m.of_kind(kind):
            findings.append(Finding("exposure", ref(doc), "the stack has no ingress controller route: the internet "
                                                          "comes in through cloudflared only"))
    for pod in m.pod_templates():
        if pod.spec.get("hostNetwork"):
            findings.append(Finding("exposure", pod.name, "uses hostNetwork"))
        for container in pod.containers():
            for port in container.get("ports") or []:
                if port.get("hostPort"):
                    findings.append(Finding("exposure", pod.name, f"container {container.get('name')} opens hostPort "
                                                                  f"{port['hostPort']}"))
    return findings


def _library_volume(m: Manifests) -> tuple[PodTemplate | None, dict[str, Any] | None, dict[str, Any] | None]:
    pod = m.pod_template(SERVER)
    container = _container(pod, SERVER) if pod else None
    if pod is None or container is None:
        return pod, container, None
    mount = next((vm for vm in container.get("volumeMounts") or []
                  if str(vm.get("mountPath", "")).rstrip("/") == MEDIA_LOCATION), None)
    return pod, container, (pod.volume(mount.get("name")) if mount else None)


def check_nas_library(m: Manifests) -> list[Finding]:
    pod, container, volume = _library_volume(m)
    if pod is None or container is None:
        return [Finding("nas-library", f"Deployment/{SERVER}", f"no {SERVER} container in the stack")]
    findings = []
    if volume is None:
        findings.append(Finding("nas-library", pod.name, f"nothing is mounted at {MEDIA_LOCATION}: the library "
                                                         f"(the NAS) must be mounted there"))
    elif "hostPath" not in volume:
        kinds = [k for k in volume if k != "name"]
        findings.append(Finding("nas-library", pod.name, f"the library at {MEDIA_LOCATION} is {kinds}, not the "
                                                         f"NAS by hostPath"))
    elif volume["hostPath"].get("type") != "Directory":
        findings.append(Finding("nas-library", pod.name, f"the library hostPath has type "
                                                         f"{volume['hostPath'].get('type')!r}; it must be "
                                                         f"'Directory' so a missing NAS stops the pod"))
    media = effective_env(m, pod, container).get("IMMICH_MEDIA_LOCATION")
    if media is None or media.rstrip("/") != MEDIA_LOCATION:
        findings.append(Finding("nas-library", pod.name, f"IMMICH_MEDIA_LOCATION is {media!r}, not "
                                                         f"{MEDIA_LOCATION} where the library is mounted"))
    return findings


def check_mount_guard(m: Manifests) -> list[Finding]:
    findings = []
    for pod in m.pod_templates():
        for container in pod.containers():
            if "IMMICH_IGNORE_MOUNT_CHECK_ERRORS" in effective_env(m, pod, container):
                findings.append(Finding("mount-guard", pod.name, f"container {container.get('name')} sets "
                                                                 f"IMMICH_IGNORE_MOUNT_CHECK_ERRORS, which turns off "
                                                                 f"Immich's guard against an unmounted library"))
    return findings


def check_hostpath_types(m: Manifests) -> list[Finding]:
    findings = []
    for pod in m.pod_templates():
        for volume in pod.spec.get("volumes") or []:
            host_path = volume.get("hostPath")
            if host_path is not None and host_path.get("type") != "Directory":
                findings.append(Finding("hostpath-types", pod.name, f"hostPath volume {volume.get('name')} "
                                                                    f"({host_path.get('path')}) has type "
                                                                    f"{host_path.get('type')!r}: use 'Directory', so a "
                                                                    f"missing folder stops the pod instead of being "
                                                                    f"created on the node's disk"))
    return findings


def check_library_read_only(m: Manifests) -> list[Finding]:
    server, _, volume = _library_volume(m)
    if volume is None or "hostPath" not in volume:
        return []
    library = str(volume["hostPath"].get("path", "")).rstrip("/")
    findings = []
    for pod in m.pod_templates():
        if pod is server or _name(pod.owner) == SERVER:
            continue
        names = {v.get("name") for v in pod.spec.get("volumes") or []
                 if str((v.get("hostPath") or {}).get("path", "")).rstrip("/") == library}
        for container in pod.containers():
            for mount in container.get("volumeMounts") or []:
                if mount.get("name") in names and mount.get("readOnly") is not True:
                    findings.append(Finding("library-read-only", pod.name, f"container {container.get('name')} "
                                                                           f"mounts the library ({library}) "
                                                                           f"writable; only {SERVER} may write it"))
    return findings


def check_server_endpoints(m: Manifests) -> list[Finding]:
    pod = m.pod_template(SERVER)
    container = _container(pod, SERVER) if pod else None
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
        findings += _check_endpoint(m, "server-endpoints", pod.name, f"IMMICH_MACHINE_LEARNING_URL {url}",
                                    parts.hostname or "", parts.port or 80, pod.namespace, MACHINE_LEARNING)
    proxy = m.pod_template(PROXY)
    proxy_container = proxy.containers(init=False)[0] if proxy and proxy.containers(init=False) else None
    if proxy is None or proxy_container is None:
        findings.append(Finding("server-endpoints", f"Deployment/{PROXY}", "no origin proxy in the stack"))
    else:
        upstream = effective_env(m, proxy, proxy_container).get("UPSTREAM_ADDRESS") or ""
        host, _, port = upstream.rpartition(":")
        if not host or not port.isdigit():
            findings.append(Finding("server-endpoints", proxy.name, f"UPSTREAM_ADDRESS {upstream!r} is not host:port"))
        else:
            findings += _check_endpoint(m, "server-endpoints", proxy.name, f"UPSTREAM_ADDRESS {upstream}", host,
                                        int(port), proxy.namespace, "immich-server", expect_port=2283)
    return findings


def _endpoint_from_env(m: Manifests, pod: PodTemplate, env: dict[str, str | None], host_var: str, port_var: str,
                       default_port: int, image: str) -> list[Finding]:
    host = env.get(host_var)
    if not host:
        return [Finding("server-endpoints", pod.name, f"{host_var} is not set")]
    port_text = env.get(port_var) or str(default_port)
    if not port_text.isdigit():
        return [Finding("server-endpoints", pod.name, f"{port_var} {port_text!r} is not a port number")]
    return _check_endpoint(m, "server-endpoints", pod.name, f"{host_var} {host}", host, int(port_text),
                           pod.namespace, image)


def check_images(m: Manifests) -> list[Finding]:
    """Every image pinned (a tag other than latest, or a digest), by digest where Immich's compose file does;
    that the two Immich images name one release is immich_release's check."""
    findings = []
    for pod in m.pod_templates():
        for container in pod.containers():
            image = str(container.get("image") or "")
            name, tag, digest = split_image(image)
            subject = f"{pod.name} container {container.get('name')}"
            if digest is not None and not DIGEST_PATTERN.fullmatch(digest):
                findings.append(Finding("images-pinned", subject, f"image {image!r} has a malformed digest"))
            if tag == "latest" or (tag is None and digest is None):
                findings.append(Finding("images-pinned", subject, f"image {image!r} is not pinned to a release "
                                                                  f"(no tag, or 'latest')"))
            if name in DIGEST_PINNED and digest is None:
                findings.append(Finding("images-pinned", subject, f"image {image!r} has no digest: {name} is "
                                                                  f"pinned by digest (stack/base/kustomization.yaml)"))
            if tag is not None and not re.fullmatch(r"[\w][\w.-]{0,127}", tag):
                findings.append(Finding("images-pinned", subject, f"image {image!r} has a malformed tag"))
    return findings


def check_secrets_not_inline(m: Manifests) -> list[Finding]:
    findings = []
    for pod in m.pod_templates():
        for container in pod.containers():
            env = effective_env(m, pod, container)
            for var in container.get("env") or []:
                if SECRET_NAME_PATTERN.search(str(var.get("name"))) and "value" in var:
                    findings.append(Finding("secrets-not-inline", pod.name, f"{var.get('name')} is written in the "
                                                                            f"manifest; take it from a Secret"))
            for name, value in env.items():
                literal = any(v.get("name") == name and "value" in v for v in container.get("env") or [])
                if SECRET_NAME_PATTERN.search(name) and value is not None and not literal:
                    findings.append(Finding("secrets-not-inline", pod.name, f"{name} comes from a ConfigMap; take "
                                                                            f"it from a Secret"))
    return findings


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


CHECKS: dict[str, Callable[[Manifests], list[Finding]]] = {
    "service-selectors": check_service_selectors,
    "service-target-ports": check_service_target_ports,
    "config-references": check_config_references,
    "probe-ports": check_probe_ports,
    "cloudflared-ingress": check_cloudflared_ingress,
    "exposure": check_exposure,
    "nas-library": check_nas_library,
    "mount-guard": check_mount_guard,
    "hostpath-types": check_hostpath_types,
    "library-read-only": check_library_read_only,
    "server-endpoints": check_server_endpoints,
    "images-pinned": check_images,
    "secrets-not-inline": check_secrets_not_inline,
}


def run_crossref_checks(documents: list[dict[str, Any]], proxy_files: dict[str, str] | None = None) -> list[Finding]:
    m = Manifests(documents)
    findings: list[Finding] = []
    for check in CHECKS.values():
        findings += check(m)
    findings += check_proxy_config(m, proxy_files)
    return findings
