"""One Immich release: the server and machine learning run the same release tag.

Each Immich image is its own entry under `images:` of stack/base/kustomization.yaml (so that each can be pinned by its
own digest), which lets the two tags drift apart: an upgrade that moves one only would run a server against the
machine learning of another release. The rendered stack is checked, so an overlay that sets one tag is caught too.
"""

from __future__ import annotations

from immich_conformance.stack_checks.findings import Finding
from immich_conformance.stack_checks.image_pins import split_image
from immich_conformance.stack_checks.manifests import Manifests
from immich_conformance.versions import IMMICH_IMAGE_NAMES

CHECK = "immich-release"
WHERE = "stack/base/kustomization.yaml images: (and any overlay that sets one of them)"


def check_immich_release(m: Manifests) -> list[Finding]:
    tags: dict[str, set[str | None]] = {name: set() for name in IMMICH_IMAGE_NAMES}
    findings = []
    for pod in m.pod_templates():
        for container in pod.containers():
            image = str(container.get("image") or "")
            name, tag, _ = split_image(image)
            short = name.rsplit("/", 1)[-1]
            if short not in tags:
                continue
            tags[short].add(tag)
            if tag is None:
                findings.append(Finding(CHECK, f"{pod.name} container {container.get('name')}",
                                        f"image {image!r} names no Immich release tag: give it newTag in {WHERE}"))
    found = {short: sorted(t for t in found if t) for short, found in tags.items()}
    releases = {t for found_tags in found.values() for t in found_tags}
    if len(releases) > 1:
        shown = ", ".join(f"{short} {'/'.join(t) or 'untagged'}" for short, t in found.items())
        findings.append(Finding(CHECK, "immich", f"the Immich images name different releases ({shown}): set the "
                                                 f"same release as newTag of both in {WHERE}"))
    return findings
