"""Images pinned to a release: a tag other than latest or a digest, and a digest where Immich's own compose file
pins one. That the two Immich images name one release is immich_release's check."""

from __future__ import annotations

import re

from immich_conformance.stack_checks.findings import Finding
from immich_conformance.stack_checks.manifests import Manifests

DIGEST_PATTERN = re.compile(r"sha256:[0-9a-f]{64}")
# Third-party images Immich's own docker-compose.yml pins by digest (stack/base/kustomization.yaml keeps them).
DIGEST_PINNED = ("ghcr.io/immich-app/postgres", "docker.io/valkey/valkey")


def split_image(image: str) -> tuple[str, str | None, str | None]:
    """(name, tag, digest) of an image reference."""
    rest, _, digest = image.partition("@")
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = rest.rsplit(":", 1)
        return name, tag, digest or None
    return rest, None, digest or None


def check_images(m: Manifests) -> list[Finding]:
    """Every image pinned (a tag other than latest, or a digest), by digest where Immich's compose file does;
    that the two Immich images name one release is immich_release's check."""
    findings = []
    for pod in m.pod_templates():
        for container in pod.containers():
            image = str(container.get("image") or "")
            name, tag, digest = split_image(image)
            subject = f"{pod.name} container {container.get('name')}"
            if digest is not None and not DIGEST_PATTERN.fullmatch(digest):
                findings.append(Finding("images-pinned", subject, f"image {image!r} has a malformed digest"))
            if tag == "latest" or (tag is None and digest is None):
                findings.append(Finding("images-pinned", subject, f"image {image!r} is not pinned to a release "
                                                                  f"(no tag, or 'latest')"))
            if name in DIGEST_PINNED and digest is None:
                findings.append(Finding("images-pinned", subject, f"image {image!r} has no digest: {name} is "
                                                                  f"pinned by digest (stack/base/kustomization.yaml)"))
            if tag is not None and not re.fullmatch(r"[\w][\w.-]{0,127}", tag):
                findings.append(Finding("images-pinned", subject, f"image {image!r} has a malformed tag"))
    return findings
