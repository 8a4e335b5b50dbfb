"""Whether a host and port a workload is configured with reach, through a Service, the pod they should."""

from __future__ import annotations

from typing import Any

from immich_conformance.stack_checks.findings import Finding
from immich_conformance.stack_checks.manifests import Manifests, PodTemplate
from immich_conformance.stack_checks.pod_lookups import pod_port


def service_name_of_host(host: str, namespace: str) -> str | None:
    """The Service name an in-cluster host name means (name, name.ns, name.ns.svc[.cluster.local])."""
    parts = host.split(".")
    if len(parts) == 1:
        return parts[0]
    if parts[1] == namespace and (len(parts) == 2 or parts[2:] in (["svc"], ["svc", "cluster", "local"])):
        return parts[0]
    return None


def service_backends(m: Manifests, svc: dict[str, Any], port: int) -> list[tuple[PodTemplate, int | None]]:
    """For a Service port number: each selected pod and the container port it reaches (None: not declared)."""
    for entry in (svc.get("spec") or {}).get("ports") or []:
        if entry.get("port") == port:
            target = entry.get("targetPort", entry.get("port"))
            protocol = entry.get("protocol") or "TCP"
            selector = (svc.get("spec") or {}).get("selector") or {}
            pods = m.pods_selected_by(selector, m.namespace_of(svc))
            return [(pod, pod_port(pod, target, protocol)) for pod in pods]
    return []


def check_endpoint(m: Manifests, check: str, subject: str, what: str, host: str, port: int, namespace: str,
                   expect_image: str, expect_port: int | None = None) -> list[Finding]:
    svc_name = service_name_of_host(host, namespace)
    svc = m.service(svc_name, namespace) if svc_name else None
    if svc is None:
        return [Finding(check, subject, f"{what} names '{host}', which is not a Service in namespace {namespace}")]
    backends = service_backends(m, svc, port)
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
