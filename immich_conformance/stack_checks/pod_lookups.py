"""Lookups on pod templates that several checks share: an object's name, a container by name, the port a
container declares, and a container's environment as far as the manifests say."""

from __future__ import annotations

from typing import Any

from immich_conformance.stack_checks.manifests import Manifests, PodTemplate


def name_of(doc: dict[str, Any]) -> str:
    return str((doc.get("metadata") or {}).get("name"))


def container_named(pod: PodTemplate, name: str) -> dict[str, Any] | None:
    return next((c for c in pod.containers() if c.get("name") == name), None)


def declared_port(container: dict[str, Any], port: int | str, protocol: str = "TCP") -> int | None:
    """The container port number that `port` (a number or a port name) means, None if not declared."""
    for declared in container.get("ports") or []:
        if (declared.get("protocol") or "TCP") != protocol:
            continue
        if (isinstance(port, str) and declared.get("name") == port) or \
                (isinstance(port, int) and declared.get("containerPort") == port):
            return int(declared["containerPort"])
    return None


def pod_port(pod: PodTemplate, port: int | str, protocol: str = "TCP") -> int | None:
    for container in pod.containers(init=False):
        found = declared_port(container, port, protocol)
        if found is not None:
            return found
    return None


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
