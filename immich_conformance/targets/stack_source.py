"""The manifests a cluster run applies: an overlay of a ``stack/`` folder (this checkout's, or a git ref's own copy),
optionally with both Immich images moved to one tag, placed in a namespace and on host folders.

``Placement`` is where a test deployment goes: the stack's own namespace with its fixed node ports and host folders
(the default), or another namespace beside a production Immich on the same node, where the cluster chooses the node
ports and every host folder moves under a scratch folder the user names (nothing shared with production).
"""

from __future__ import annotations

import copy
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import yaml

from .. import STACK_DIR
from ..stack_checks.rendering import StackConfigError, run_kustomize
from ..versions import immich_image_at
from .kinds import CLUSTER_SCOPED

if TYPE_CHECKING:
    from ..images.edge_material import EdgeMaterial

STACK_NAMESPACE = "immich"
# The node folders of the stack, by the Deployment and volume that mount them.
HOST_FOLDERS = {"nas": ("immich-server", "library"), "postgres": ("immich-postgres", "data"),
                "models": ("immich-machine-learning", "model-cache")}
SCRATCH_LAYOUT = {"nas": "nas/immich", "postgres": "internal_drive/postgres", "models": "internal_drive/model-cache"}
# The keys of the kind overlay's secret files that a test deployment fills with a random value.
SECRET_KEYS = ("DB_PASSWORD=", "REDIS_PASSWORD=", "TUNNEL_TOKEN=")


@dataclass(frozen=True)
class StackSource:
    """An overlay of one ``stack/`` folder; ``immich_tag`` moves the Immich server and machine learning to it."""

    overlay: str = "ci"
    stack_dir: Path = STACK_DIR
    immich_tag: str | None = None
    origin: str = "this checkout's stack/"

    def render(self) -> list[dict[str, Any]]:
        shown = f"{self.origin} overlays/{self.overlay}"
        if self.stack_dir.resolve() != STACK_DIR.resolve():
            copy_test_secrets(self.stack_dir)
        path = self.stack_dir / "overlays" / self.overlay
        if not path.is_dir():
            raise StackConfigError(f"{shown}: there is no such overlay ({path})")
        docs = [d for d in yaml.safe_load_all(run_kustomize(path, shown)) if isinstance(d, dict)]
        if self.immich_tag:
            for container in containers(docs):
                container["image"] = immich_image_at(container["image"], self.immich_tag) or container["image"]
        return docs


def copy_test_secrets(stack_dir: Path) -> None:
    """Give another ``stack/`` folder (a git ref's copy) this checkout's git-ignored test secrets, so that both
    releases of a rehearsal share one database password and one edge stand-in."""
    for folder in STACK_DIR.glob("**/secrets"):
        for item in folder.iterdir():
            if item.is_file() and not item.name.endswith(".example"):
                target = stack_dir / item.relative_to(STACK_DIR)
                if target.parent.is_dir():
                    shutil.copy2(item, target)


def ensure_test_secrets(progress: Callable[[str], None]) -> EdgeMaterial:
    """The git-ignored files a test deployment renders with, made where they are missing: the kind overlay's
    secret files (random passwords) and the edge stand-in's material (returned)."""
    from ..images.edge_material import default_component_dir, prepare_edge_material

    for example in (STACK_DIR / "overlays" / "kind" / "secrets").glob("*.env.example"):
        target = example.with_suffix("")
        if target.exists():
            continue
        target.write_text("\n".join(
            f"{line.split('=', 1)[0]}={secrets.token_hex(16)}" if line.startswith(SECRET_KEYS)
            else line for line in example.read_text().splitlines()) + "\n")
        target.chmod(0o600)
        progress(f"made {target.relative_to(STACK_DIR.parent)} for test deployments")
    return prepare_edge_material(default_component_dir())


def containers(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for d in docs for c in
            [*pod_spec(d).get("initContainers", []), *pod_spec(d).get("containers", [])]]


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    return ((doc.get("spec") or {}).get("template") or {}).get("spec") or {}


def deployment(docs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    for doc in docs:
        if doc.get("kind") == "Deployment" and doc["metadata"]["name"] == name:
            return doc
    raise StackConfigError(f"the rendered stack has no Deployment {name}")


def host_folders(docs: list[dict[str, Any]]) -> dict[str, str]:
    """The node paths of the NAS library, Postgres's data and the model cache, as the manifests mount them."""
    found = {}
    for key, (name, volume) in HOST_FOLDERS.items():
        volumes = {v["name"]: v for v in pod_spec(deployment(docs, name)).get("volumes", [])}
        if "hostPath" not in volumes.get(volume, {}):
            raise StackConfigError(f"Deployment {name} has no hostPath volume {volume}")
        found[key] = volumes[volume]["hostPath"]["path"]
    return found


@dataclass(frozen=True)
class Placement:
    """Where a test deployment goes: ``namespace``; ``scratch`` (a node folder) for its host folders. Outside the
    stack's own namespace the node ports are the cluster's choice and a scratch folder is required."""

    namespace: str = STACK_NAMESPACE
    scratch: PurePosixPath | None = None

    @property
    def beside(self) -> bool:
        """True when the deployment goes beside the stack's own namespace (a production Immich may be there)."""
        return self.namespace != STACK_NAMESPACE

    def check(self) -> None:
        if self.beside and self.scratch is None:
            raise StackConfigError(f"--namespace {self.namespace} needs --scratch DIR: a node folder for the test "
                                   "deployment's NAS, database and model cache, so that nothing is shared with the "
                                   "Immich in the stack's own namespace")
        if self.scratch is not None and not self.scratch.is_absolute():
            raise StackConfigError(f"--scratch {self.scratch}: give an absolute path on the node")

    def apply_to(self, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The manifests in this namespace; outside the stack's own, node ports left to the cluster; under a
        scratch folder, every host folder moved into it."""
        docs = copy.deepcopy(docs)
        moved = {}
        if self.scratch is not None:
            moved = {old: str(self.scratch / SCRATCH_LAYOUT[key]) for key, old in host_folders(docs).items()}
        for doc in docs:
            meta = doc.setdefault("metadata", {})
            if doc.get("kind") == "Namespace":
                meta["name"] = self.namespace
            elif doc.get("kind") in CLUSTER_SCOPED:
                self._place_cluster_scoped(doc)
            else:
                meta["namespace"] = self.namespace
            if doc.get("kind") == "Service" and self.beside:
                for port in (doc.get("spec") or {}).get("ports", []):
                    port.pop("nodePort", None)
            for volume in pod_spec(doc).get("volumes", []):
                path = (volume.get("hostPath") or {}).get("path")
                if path in moved:
                    volume["hostPath"]["path"] = moved[path]
        return docs


    def _place_cluster_scoped(self, doc: dict[str, Any]) -> None:
        """An admission policy and its binding serve this namespace only, under a name of their own beside it."""
        def own(name: str) -> str:  # immich-pod-security -> <namespace>-pod-security
            return f"{self.namespace}-{name.removeprefix(STACK_NAMESPACE + '-')}"

        meta = doc["metadata"]
        meta.pop("namespace", None)
        meta["name"] = own(meta["name"])
        spec = doc.get("spec") or {}
        if doc["kind"] == "ValidatingAdmissionPolicyBinding":
            spec["policyName"] = own(spec["policyName"])
            selector = spec.setdefault("matchResources", {}).setdefault("namespaceSelector", {})
            selector["matchLabels"] = {"kubernetes.io/metadata.name": self.namespace}


def dump(docs: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False)
