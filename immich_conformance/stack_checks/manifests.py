"""An index over rendered Kubernetes objects: workloads and their pod templates, Services, ConfigMaps, Secrets."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")
EXPOSED_SERVICE_TYPES = ("NodePort", "LoadBalancer")


def ref(doc: dict[str, Any]) -> str:
    meta = doc.get("metadata") or {}
    return f"{doc.get('kind')}/{meta.get('name')}"


@dataclass
class PodTemplate:
    """The pod of a workload (or a bare Pod)."""

    owner: dict[str, Any]
    namespace: str
    labels: dict[str, str]
    spec: dict[str, Any]

    @property
    def name(self) -> str:
        return ref(self.owner)

    def containers(self, *, init: bool = True) -> list[dict[str, Any]]:
        found = list(self.spec.get("containers") or [])
        if init:
            found += list(self.spec.get("initContainers") or [])
        return found

    def volume(self, name: str) -> dict[str, Any] | None:
        return next((v for v in self.spec.get("volumes") or [] if v.get("name") == name), None)

    def ports(self) -> list[dict[str, Any]]:
        return [p for c in self.containers(init=False) for p in c.get("ports") or []]


class Manifests:
    def __init__(self, documents: list[dict[str, Any]], default_namespace: str = "default") -> None:
        self.documents = [d for d in documents if isinstance(d, dict)]
        self.default_namespace = default_namespace

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.documents if d.get("kind") == kind]

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        return next((d for d in self.of_kind(kind) if (d.get("metadata") or {}).get("name") == name), None)

    def namespace_of(self, doc: dict[str, Any]) -> str:
        return (doc.get("metadata") or {}).get("namespace") or self.default_namespace

    def pod_templates(self) -> Iterator[PodTemplate]:
        for doc in self.documents:
            kind = doc.get("kind")
            if kind in WORKLOAD_KINDS:
                template = ((doc.get("spec") or {}).get("template")) or {}
                meta, spec = template.get("metadata") or {}, template.get("spec") or {}
            elif kind == "CronJob":
                job = (((doc.get("spec") or {}).get("jobTemplate") or {}).get("spec") or {}).get("template") or {}
                meta, spec = job.get("metadata") or {}, job.get("spec") or {}
            elif kind == "Pod":
                meta, spec = doc.get("metadata") or {}, doc.get("spec") or {}
            else:
                continue
            yield PodTemplate(doc, self.namespace_of(doc), dict(meta.get("labels") or {}), spec)

    def pod_template(self, workload_name: str) -> PodTemplate | None:
        return next((p for p in self.pod_templates() if (p.owner.get("metadata") or {}).get("name") == workload_name),
                    None)

    def pods_selected_by(self, selector: dict[str, str], namespace: str) -> list[PodTemplate]:
        if not selector:
            return []
        return [p for p in self.pod_templates()
                if p.namespace == namespace and all(p.labels.get(k) == v for k, v in selector.items())]

    def service(self, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        for svc in self.of_kind("Service"):
            if (svc.get("metadata") or {}).get("name") == name and \
                    (namespace is None or self.namespace_of(svc) == namespace):
                return svc
        return None

    def config_data(self, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
        """Keys of a ConfigMap or Secret (data, binaryData, stringData), None when there is no such object."""
        for doc in self.of_kind(kind):
            if (doc.get("metadata") or {}).get("name") == name and self.namespace_of(doc) == namespace:
                data: dict[str, Any] = {}
                for part in ("data", "binaryData", "stringData"):
                    data.update(doc.get(part) or {})
                return data
        return None
