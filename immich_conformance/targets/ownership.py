"""What the suite may touch on a cluster: only objects that carry its own mark.

Every object the suite applies carries ``app.kubernetes.io/managed-by: immich-conformance`` (added to the rendered
manifests at apply time: ``stack/`` itself, which a person applies to their node, carries no such label). Before any
change, ``check_ownership`` refuses a namespace, or an object the suite would apply over, that exists without that
label: a production Immich in the same namespace stops the run with a message, nothing changed. ``prune`` deletes
only labelled objects.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..kube import Kube, KubeError
from .kinds import (
    CLUSTER_SCOPED,
    EVERY_NAMESPACE_HAS,
    KIND_NAMES,
    MANAGED_BY,
    NAMESPACED_KINDS,
    OWNED_SELECTOR,
    OWNER,
)


class OwnershipError(RuntimeError):
    """Something the run would change is not the suite's: the message names it and the way out."""


def is_owned(obj: dict[str, Any]) -> bool:
    return ((obj.get("metadata") or {}).get("labels") or {}).get(MANAGED_BY) == OWNER


def mark(docs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The manifests with the suite's mark on every object and on every pod template (so its pods carry it too)."""
    marked = []
    for doc in docs:
        doc.setdefault("metadata", {}).setdefault("labels", {})[MANAGED_BY] = OWNER
        template = (doc.get("spec") or {}).get("template")
        if isinstance(template, dict):
            template.setdefault("metadata", {}).setdefault("labels", {})[MANAGED_BY] = OWNER
        marked.append(doc)
    return marked


@dataclass(frozen=True)
class ObjectRef:
    kind: str  # as kubectl names it (KIND_NAMES values)
    name: str

    def __str__(self) -> str:
        return f"{self.kind.split('.')[0]}/{self.name}"


def refs_of(docs: Iterable[dict[str, Any]]) -> set[ObjectRef]:
    """The namespaced objects of ``docs``."""
    return {ObjectRef(KIND_NAMES.get(d["kind"], d["kind"].lower() + "s"), d["metadata"]["name"]) for d in docs
            if d.get("kind") != "Namespace" and d.get("kind") not in CLUSTER_SCOPED}


def foreign_cluster_objects(kube: Kube, docs: Iterable[dict[str, Any]]) -> list[str]:
    """The cluster-scoped objects ``docs`` would apply that exist without the suite's mark."""
    foreign = []
    for doc in docs:
        kind = CLUSTER_SCOPED.get(doc.get("kind", ""))
        if kind is None:
            continue
        try:
            found = kube.find(kind, doc["metadata"]["name"], namespaced=False)
        except KubeError as exc:
            raise OwnershipError(f"cannot read {kind} {doc['metadata']['name']}: {exc}") from None
        if found is not None and not is_owned(found):
            foreign.append(f"{kind.split('.')[0]}/{doc['metadata']['name']}")
    return foreign


def namespace_way_out(namespace: str) -> str:
    return (f"Nothing was changed. To test beside it, run the suite in a namespace of its own: --namespace "
            f"{namespace}-conformance --scratch DIR (a node folder for the test's NAS, database and model cache)")


def check_ownership(kube: Kube, namespace: str, docs: list[dict[str, Any]]) -> bool:
    """Refuse, before any change, a namespace or object that exists without the suite's mark. Returns whether the
    namespace exists (then it is the suite's, from an earlier run)."""
    try:
        found = kube.find("namespaces", namespace, namespaced=False)
    except KubeError as exc:
        raise OwnershipError(f"cannot read namespace {namespace}: {exc}") from None
    exists = found is not None
    if found is not None and not is_owned(found):
        raise OwnershipError(f"namespace {namespace} exists and was not made by the suite (it has no label "
                             f"{OWNED_SELECTOR}): it may hold your Immich. {namespace_way_out(namespace)}")
    foreign_cluster = foreign_cluster_objects(kube, docs)
    if foreign_cluster:
        raise OwnershipError(f"{', '.join(foreign_cluster)} exist(s) and was not made by the suite: the stack in "
                             f"namespace {namespace} would replace it. {namespace_way_out(namespace)}")
    if not exists:
        return False
    foreign = foreign_objects(kube)
    if foreign:
        shown = ", ".join(str(ref) for ref in sorted(foreign, key=str)[:12])
        raise OwnershipError(f"namespace {namespace} is the suite's, but holds objects it did not make ({shown}): "
                             f"move them out of it, or use another namespace (--namespace). Nothing was changed.")
    return True


def foreign_objects(kube: Kube) -> set[ObjectRef]:
    """Objects of the namespace that lack the suite's mark (what a person added to it), besides what every
    namespace has by itself and the Secrets and ConfigMaps a controller makes for its own."""
    refs = set()
    for item in (i for kind in NAMESPACED_KINDS for i in kube.items(kind, f"{MANAGED_BY}!={OWNER}")):
        kind = KIND_NAMES.get(item["kind"], item["kind"])
        name = item["metadata"]["name"]
        if (kind, name) in EVERY_NAMESPACE_HAS or item.get("type") == "kubernetes.io/service-account-token":
            continue
        if item["metadata"].get("ownerReferences"):
            continue
        refs.add(ObjectRef(kind, name))
    return refs


def owned_objects(kube: Kube, kinds: Iterable[str]) -> set[ObjectRef]:
    return {ObjectRef(KIND_NAMES.get(i["kind"], i["kind"]), i["metadata"]["name"])
            for kind in sorted(set(kinds)) for i in kube.items(kind, OWNED_SELECTOR)}


def prune(kube: Kube, keep: list[dict[str, Any]], was: list[dict[str, Any]]) -> list[ObjectRef]:
    """Delete the suite's objects of the kinds in ``was`` or ``keep`` that ``keep`` no longer has; only objects
    with the suite's mark are looked at. Returns what was deleted."""
    kinds = {ref.kind for ref in refs_of(was) | refs_of(keep)}
    if not kinds:
        return []
    gone = sorted(owned_objects(kube, kinds) - refs_of(keep), key=str)
    for ref in gone:
        kube.run("delete", ref.kind, ref.name, "--wait=false", "--ignore-not-found")
    return gone
