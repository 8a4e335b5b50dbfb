"""What moved between the two releases of a rehearsal: the images each phase ran (read from the running
deployment) and the environment of every container that changed between the two releases' manifests."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..targets.stack_source import pod_spec


def environment(docs: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Each container's environment ("deployment/container" -> {name: value}), with ConfigMap ``envFrom`` resolved
    from the same manifests; values from Secrets are named, never shown."""
    config_maps = {d["metadata"]["name"]: d.get("data") or {} for d in docs if d.get("kind") == "ConfigMap"}
    found: dict[str, dict[str, str]] = {}
    for doc in docs:
        for container in pod_spec(doc).get("containers", []):
            env: dict[str, str] = {}
            for source in container.get("envFrom", []):
                prefix = source.get("prefix", "")
                if "configMapRef" in source:
                    data = config_maps.get(source["configMapRef"]["name"], {})
                    env.update({prefix + k: str(v) for k, v in data.items()})
                elif "secretRef" in source:
                    env[f"{prefix}* (Secret)"] = "the keys of a Secret"
            for var in container.get("env", []):
                if "value" in var:
                    env[var["name"]] = str(var["value"])
                else:
                    ref = var.get("valueFrom", {})
                    kind = next(iter(ref), "valueFrom")
                    env[var["name"]] = f"<from {kind}{' ' + ref[kind].get('key', '') if kind in ref else ''}>"
            found[f"{doc['metadata']['name']}/{container['name']}"] = env
    return found


def environment_changes(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[str]:
    """One line per variable added, removed or changed, and per container added or removed."""
    old, new = environment(before), environment(after)
    lines = [f"{c}: container removed" for c in sorted(old.keys() - new.keys())]
    lines += [f"{c}: container added" for c in sorted(new.keys() - old.keys())]
    for container in sorted(old.keys() & new.keys()):
        a, b = old[container], new[container]
        for name in sorted(a.keys() | b.keys()):
            if name not in b:
                lines.append(f"{container}: {name} removed (was {a[name]!r})")
            elif name not in a:
                lines.append(f"{container}: {name} added ({b[name]!r})")
            elif a[name] != b[name]:
                lines.append(f"{container}: {name} {a[name]!r} -> {b[name]!r}")
    return lines


def image_changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return [f"{c}: {before.get(c, '(none)')} -> {after.get(c, '(none)')}"
            for c in sorted(before.keys() | after.keys()) if before.get(c) != after.get(c)]


@dataclass
class ReleaseReport:
    """What each phase ran and what changed; written as ``releases.json`` beside the rehearsal's reports."""

    release_from: str
    release_to: str
    scope: str  # what moved: the whole ref, or only the Immich tag
    images: dict[str, dict[str, str]] = field(default_factory=dict)  # phase -> running images
    running_environment: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)  # phase -> env
    environment_changes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"what moved: {self.scope}"]
        if "from" in self.images and "to" in self.images:
            out += [f"image {line}" for line in image_changes(self.images["from"], self.images["to"])] or \
                ["images: none changed"]
        out += [f"environment {line}" for line in self.environment_changes] or ["environment: none changed"]
        return out

    def write(self, folder: Path) -> Path:
        path = folder / "releases.json"
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")
        return path
