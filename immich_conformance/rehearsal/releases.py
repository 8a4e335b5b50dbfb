"""What ``--from`` and ``--to`` name: an Immich release tag applied to the current stack (only the tag moves), or
a git ref of this repository, whose own ``stack/`` is deployed whole (every image, environment, config and
manifest of that ref)."""

from __future__ import annotations

import io
import re
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from .. import REPO_ROOT
from ..stack_checks.rendering import StackConfigError
from ..targets.stack_source import StackSource, containers, ensure_test_secrets
from ..versions import IMMICH_IMAGE_NAMES, IMMICH_VERSION

TAG = re.compile(r"^v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$")
SERVER_IMAGE = "ghcr.io/immich-app/immich-server"
MACHINE_LEARNING_IMAGE = "ghcr.io/immich-app/immich-machine-learning"
# The offline cluster has no real Immich: it rehearses between two builds of the API double.
DEFAULT_FROM = IMMICH_VERSION
DEFAULT_TO = "v3.1.0"


class RehearsalError(RuntimeError):
    """The rehearsal cannot run as asked; the message says what to fix."""


@dataclass(frozen=True)
class Release:
    ref: str
    immich_tag: str
    origin: str
    stack: StackSource
    whole: bool  # True: the ref's own stack/ deploys whole; False: only the Immich tag moves on the current stack

    def __str__(self) -> str:
        return f"{self.immich_tag} ({self.origin})"


def resolve(ref: str, overlay: str = "ci", *, workdir: Path | None = None) -> Release:
    """The release ``ref`` names. A git ref's ``stack/`` is copied out of git (under ``workdir``) and rendered
    once here, so that a ref that does not render stops the rehearsal before anything is deployed."""
    if TAG.match(ref):
        ensure_test_secrets(lambda message: None)  # the report renders the current stack/ (a fresh checkout too)
        return Release(ref, ref, "Immich release tag on the current stack/",
                       StackSource(overlay, immich_tag=ref), whole=False)
    commit = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], cwd=REPO_ROOT,
                            capture_output=True, text=True)
    if commit.returncode != 0:
        raise RehearsalError(f"{ref!r} is neither an Immich release tag (vX.Y.Z) nor a git ref of this repository "
                             "(a branch, tag or commit: git fetch it first)")
    sha = commit.stdout.strip()
    origin = f"git ref {ref} ({sha[:12]})"
    shown = subprocess.run(["git", "show", f"{sha}:stack/base/kustomization.yaml"], cwd=REPO_ROOT,
                           capture_output=True, text=True)
    if shown.returncode != 0:
        raise RehearsalError(f"{origin} has no stack/base/kustomization.yaml: it does not render")
    try:
        images = yaml.safe_load(shown.stdout).get("images", [])
        tag = next(i["newTag"] for i in images if i.get("name") == SERVER_IMAGE)
    except (yaml.YAMLError, AttributeError, StopIteration, KeyError):
        raise RehearsalError(f"{origin}: stack/base/kustomization.yaml does not pin {SERVER_IMAGE} under images: "
                             "(with a newTag), so it does not say which Immich it deploys") from None
    # Machine learning is an entry of its own (each image pinned by its own digest); an older stack/ copied the
    # server's tag onto it and has no such entry.
    other = next((i.get("newTag") for i in images if i.get("name") == MACHINE_LEARNING_IMAGE), tag)
    if str(other) != str(tag):
        raise RehearsalError(f"{origin}: stack/base/kustomization.yaml pins {SERVER_IMAGE} at {tag} but "
                             f"{MACHINE_LEARNING_IMAGE} at {other}: one Immich release is both images' newTag")
    source = StackSource(overlay, extract_stack(sha, workdir), origin=origin)
    ensure_test_secrets(lambda message: None)
    try:
        docs = source.render()
    except StackConfigError as exc:
        raise RehearsalError(f"{origin} does not render: {exc}") from None
    deployed = sorted({c["image"] for c in containers(docs) if _is_immich(c["image"]) and
                       not c["image"].split("@", 1)[0].endswith(f":{tag}")})
    if deployed:
        raise RehearsalError(f"{origin}: overlays/{overlay} deploys {', '.join(deployed)}, not Immich {tag} that "
                             "stack/base/kustomization.yaml pins: set the same newTag wherever the overlay names "
                             "the Immich images")
    return Release(ref, str(tag), origin, source, whole=True)


def _is_immich(image: str) -> bool:
    return image.split("@", 1)[0].rsplit("/", 1)[-1].split(":", 1)[0] in IMMICH_IMAGE_NAMES


def extract_stack(sha: str, workdir: Path | None) -> Path:
    """The ``stack/`` folder of commit ``sha``, written out of git into a new folder (the work tree is not
    touched)."""
    archive = subprocess.run(["git", "archive", "--format=tar", sha, "stack"], cwd=REPO_ROOT, capture_output=True)
    if archive.returncode != 0:
        raise RehearsalError(f"git archive {sha[:12]} stack failed: {archive.stderr.decode(errors='replace')[:300]}")
    folder = Path(tempfile.mkdtemp(prefix=f"stack-{sha[:12]}-", dir=workdir))
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(folder, filter="data")
    return folder / "stack"
