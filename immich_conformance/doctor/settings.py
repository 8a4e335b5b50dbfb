"""What the checks need from the stack, read from an overlay as kustomize renders it: the host folders
(``targets.stack_source.host_folders``), the LAN NodePort, the namespace, the public hostname, Postgres's user and the
memory the pods request."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes.utils import parse_quantity

from ..stack_checks.manifests import Manifests
from ..stack_checks.rendering import StackConfigError, render_overlay
from ..targets.stack_source import deployment, host_folders, pod_spec

SERVER_SERVICE = "immich-server"
POSTGRES_DEPLOYMENT = "immich-postgres"
GiB = 1024 ** 3


@dataclass(frozen=True)
class Limits:
    """Free space below ``fail_*`` fails, below ``warn_*`` warns (bytes)."""

    nas_warn: int = 50 * GiB
    nas_fail: int = 1 * GiB
    postgres_warn: int = 10 * GiB
    postgres_fail: int = 1 * GiB
    models_warn: int = 5 * GiB
    models_fail: int = 1 * GiB
    # Memory beyond the pods' requests for the OS, k3s itself and the page cache.
    memory_headroom: int = 1 * GiB


@dataclass(frozen=True)
class DoctorSettings:
    overlay: str
    nas_path: str
    postgres_path: str
    models_path: str
    node_port: int | None
    namespace: str
    service: str = SERVER_SERVICE
    public_hostname: str | None = None
    postgres_uid: int = 999
    memory_requests: int = 0
    nas_fstypes: tuple[str, ...] = ()  # types the user declares for the NAS besides the network filesystems
    kubeconfig: str | None = None  # to list the cluster's Services (node port check); k3s's own when on the node
    limits: Limits = field(default_factory=Limits)


def from_documents(overlay: str, docs: list[dict[str, Any]], **extra: Any) -> DoctorSettings:
    folders = host_folders(docs)
    m = Manifests(docs)
    service = m.get("Service", SERVER_SERVICE)
    if service is None:
        raise StackConfigError(f"overlays/{overlay} renders no Service {SERVER_SERVICE}")
    node_ports = [p["nodePort"] for p in (service.get("spec") or {}).get("ports") or [] if "nodePort" in p]
    return DoctorSettings(
        overlay=overlay, nas_path=folders["nas"], postgres_path=folders["postgres"], models_path=folders["models"],
        node_port=int(node_ports[0]) if node_ports else None,
        namespace=(service.get("metadata") or {}).get("namespace") or "default",
        public_hostname=public_hostname(m), postgres_uid=postgres_uid(docs), memory_requests=memory_requests(m),
        **extra)


def from_overlay(overlay: str, stack_dir: Path | None = None, **extra: Any) -> DoctorSettings:
    """Render ``overlay`` (with the committed example secrets: the doctor needs none of yours) and read it."""
    rendered = render_overlay(overlay, stack_dir, with_example_secrets=True)
    return from_documents(overlay, rendered.documents, **extra)


def public_hostname(m: Manifests) -> str | None:
    """Immich's public hostname: cloudflared's first ingress hostname, or the edge stand-in's (test overlays)."""
    for cm in m.of_kind("ConfigMap"):
        if (cm.get("metadata") or {}).get("name", "").startswith("cloudflared") and "config.yaml" in (cm.get("data")
                                                                                                         or {}):
            config = yaml.safe_load(cm["data"]["config.yaml"]) or {}
            for rule in config.get("ingress") or []:
                if rule.get("hostname"):
                    return str(rule["hostname"])
    for secret in m.of_kind("Secret"):
        if (secret.get("metadata") or {}).get("name", "").startswith("edge-standin") and \
                "edge.json" in (secret.get("data") or {}):
            edge = json.loads(base64.b64decode(secret["data"]["edge.json"]))
            if edge.get("public_hostname"):
                return str(edge["public_hostname"])
    return None


def postgres_uid(docs: list[dict[str, Any]]) -> int:
    spec = pod_spec(deployment(docs, POSTGRES_DEPLOYMENT))
    for container in spec.get("containers") or []:
        uid = (container.get("securityContext") or {}).get("runAsUser")
        if uid is not None:
            return int(uid)
    return int((spec.get("securityContext") or {}).get("runAsUser", 999))


def memory_requests(m: Manifests) -> int:
    """The memory every pod of the stack requests, summed (bytes)."""
    total = 0
    for pod in m.pod_templates():
        replicas = int(((pod.owner.get("spec") or {}).get("replicas")) or 1)
        for container in pod.containers(init=False):
            request = ((container.get("resources") or {}).get("requests") or {}).get("memory")
            if request is not None:
                total += int(parse_quantity(str(request))) * replicas
    return total
