"""What ``--from`` and ``--to`` name: an Immich release tag applied to the current stack, or a git ref of this
repository, which contributes the Immich release its stack pins."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

import yaml

from .. import REPO_ROOT
from ..versions import IMMICH_VERSION

TAG = re.compile(r"^v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$")
SERVER_IMAGE = "ghcr.io/immich-app/immich-server"
# The offline cluster has no real Immich: it rehearses between two builds of the API double.
DEFAULT_FROM = IMMICH_VERSION
DEFAULT_TO = "v3.1.0"


class RehearsalError(RuntimeError):
    """The rehearsal cannot run as asked; the message says what to fix."""


@dataclass(frozen=True)
class Release:
    ref: str
    immich_tag: str
    source: str

    def __str__(self) -> str:
        return f"{self.immich_tag} ({self.source})"


def resolve(ref: str) -> Release:
    if TAG.match(ref):
        return Release(ref, ref, "Immich release tag on the current stack/")
    commit = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], cwd=REPO_ROOT,
                            capture_output=True, text=True)
    if commit.returncode != 0:
        raise RehearsalError(f"{ref!r} is neither an Immich release tag (vX.Y.Z) nor a git ref of this repository "
                             "(a branch, tag or commit: git fetch it first)")
    sha = commit.stdout.strip()
    shown = subprocess.run(["git", "show", f"{sha}:stack/base/kustomization.yaml"], cwd=REPO_ROOT,
                           capture_output=True, text=True)
    if shown.returncode != 0:
        raise RehearsalError(f"git ref {ref} ({sha[:12]}) has no stack/base/kustomization.yaml: it does not render")
    try:
        images = yaml.safe_load(shown.stdout).get("images", [])
        tag = next(i["newTag"] for i in images if i.get("name") == SERVER_IMAGE)
    except (yaml.YAMLError, AttributeError, StopIteration, KeyError):
        raise RehearsalError(f"git ref {ref} ({sha[:12]}): stack/base/kustomization.yaml does not pin "
                             f"{SERVER_IMAGE} under images:, so it does not say which Immich it deploys") from None
    return Release(ref, str(tag), f"pinned by git ref {ref} ({sha[:12]})")
