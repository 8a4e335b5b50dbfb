"""renovate.json groups Immich's images, waits before proposing them, and moves versions.py with them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from immich_conformance.versions import IMMICH_VERSION


def _config(stack_dir: Path) -> dict:
    return json.loads((stack_dir.parent / "renovate.json").read_text())


def test_immich_images_are_grouped_with_a_minimum_release_age(stack_dir: Path) -> None:
    rules = _config(stack_dir)["packageRules"]
    immich = [r for r in rules if "ghcr.io/immich-app/*" in r.get("matchPackageNames", []) and r.get("groupName")]
    assert len(immich) == 1
    age = re.fullmatch(r"(\d+) days?", immich[0]["minimumReleaseAge"])
    assert age and int(age.group(1)) >= 3


def test_versions_py_is_updated_in_the_same_group(stack_dir: Path) -> None:
    manager = next(m for m in _config(stack_dir)["customManagers"]
                   if any("versions" in p for p in m["managerFilePatterns"]))
    assert manager["depNameTemplate"] == "ghcr.io/immich-app/immich-server"
    pattern = manager["matchStrings"][0].replace("(?<", "(?P<")
    versions_py = (stack_dir.parent / "immich_conformance" / "versions.py").read_text()
    match = re.search(pattern, versions_py)
    assert match and match.group("currentValue") == IMMICH_VERSION


def test_the_server_tag_renovate_updates_is_the_stack_release(stack_dir: Path) -> None:
    images = yaml.safe_load((stack_dir / "base" / "kustomization.yaml").read_text())["images"]
    server = next(i for i in images if i["name"] == "ghcr.io/immich-app/immich-server")
    assert server["newTag"] == IMMICH_VERSION
    assert not any(i["name"] == "ghcr.io/immich-app/immich-machine-learning" for i in images), \
        "machine learning takes the server's tag (replacements); a tag of its own could drift"
