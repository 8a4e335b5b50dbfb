"""The images a containers run needs, present in Docker before any container starts.

* ``pinned`` (default): the images the stack pins (``stack/overlays/kind-edge-standin``: the real Immich, Postgres,
  valkey and Envoy images). A reference Docker already holds is used as it is; another is pulled, through the registry
  mirror of ``IMMICH_CONFORMANCE_REGISTRY_MIRROR`` (host:port) when set. A failed pull ends the run with one line
  saying so and how to use the project's own images instead.
* ``local``: the project's own images (``stack/overlays/ci``), built by ``immich_conformance.images`` (cached) and
  ``docker load``-ed when Docker lacks that image id under that tag. An image of the project's (it carries the
  project's label) that a newer one replaced under its tag, and that no container uses, is removed: rebuilds do not
  pile up in Docker.

The edge stand-in is the project's own in both (nothing upstream stands in for Cloudflare's edge).
"""

from __future__ import annotations

import json
import os
import tarfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from ..images.recipes import IMAGE_MARK, IMAGE_PREFIX, BuildOptions, image_refs
from ..versions import IMMICH_IMAGE_NAMES, immich_image_at
from .container_spec import StackSpec
from .engine import ContainersError, one_line

if TYPE_CHECKING:
    import docker

    from ..images.oci import PackedImage

IMAGE_MODES = ("pinned", "local")
OVERLAYS = {"pinned": "kind-edge-standin", "local": "ci"}
MIRROR_ENV = "IMMICH_CONFORMANCE_REGISTRY_MIRROR"
Progress = Callable[[str], None]


def overlay_for(mode: str) -> str:
    if mode not in OVERLAYS:
        raise ContainersError(f"--images {mode!r}: choose {' or '.join(IMAGE_MODES)}")
    return OVERLAYS[mode]


def archive_image_id(archive: Path) -> str:
    """The image id (config digest) of an archive made by ``immich_conformance.images.oci.pack_image``."""
    try:
        with tarfile.open(archive) as tar:
            member = tar.extractfile("manifest.json")
            if member is None:
                raise KeyError("manifest.json")
            manifest = json.loads(member.read())
        return "sha256:" + manifest[0]["Config"].rsplit("/", 1)[-1]
    except (OSError, KeyError, IndexError, ValueError, tarfile.TarError) as exc:
        raise ContainersError(f"{archive} is not an image archive of this project ({exc}): rebuild it with "
                              "python -m immich_conformance.images build") from None


def _image_id(client: docker.DockerClient, ref: str) -> str | None:
    from docker.errors import ImageNotFound

    try:
        return client.images.get(ref).id
    except ImageNotFound:
        return None


def load_project_image(client: docker.DockerClient, packed: PackedImage, progress: Progress) -> bool:
    """``docker load`` the archive unless Docker has its image id under its tag; True when it loaded."""
    from docker.errors import DockerException

    wanted = archive_image_id(packed.archive)
    if _image_id(client, packed.ref) == wanted:
        return False
    started = time.monotonic()
    try:
        with packed.archive.open("rb") as archive:
            client.images.load(archive)
    except DockerException as exc:
        raise ContainersError(f"docker load {packed.archive} failed: {one_line(str(exc))}") from None
    if _image_id(client, packed.ref) != wanted:
        raise ContainersError(f"docker load {packed.archive} did not give {packed.ref} the image id {wanted}")
    progress(f"loaded {packed.ref} into Docker in {time.monotonic() - started:.1f}s")
    return True


def mirrored(ref: str, mirror: str) -> str:
    """``ref`` as the mirror serves it: its registry host replaced by ``mirror`` (Docker Hub names prefixed)."""
    first, _, rest = ref.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return f"{mirror}/{rest}"
    return f"{mirror}/{ref}"


def _present_or_pulled(client: docker.DockerClient, ref: str, progress: Progress) -> str:
    from docker.errors import DockerException

    if _image_id(client, ref):
        return ref
    mirror = os.environ.get(MIRROR_ENV, "").strip().rstrip("/")
    source = mirrored(ref, mirror) if mirror else ref
    if source != ref and _image_id(client, source):
        return source
    progress(f"pulling {source}")
    try:
        client.images.pull(source)
    except DockerException as exc:
        reason = getattr(exc, "explanation", None) or str(exc)
        via = f" through the mirror {mirror} ({MIRROR_ENV})" if mirror else ""
        raise ContainersError(f"cannot pull {ref}{via}: {one_line(str(reason), 200)}. The stack's pinned images need a "
                              "registry; to run with the project's own images instead, use --images local") from None
    return source


def prepare_images(client: docker.DockerClient, refs: Iterable[str], progress: Progress, *,
                   cache_dir: Path | None = None, options: BuildOptions | None = None) -> dict[str, str]:
    """Make every image of ``refs`` present in Docker; the reference to run for each (a mirror's, when pulled
    through one). ``options``: the build of the project's images (which Immich release the API double is)."""
    from ..images.build import ImageBuildError, build_images, default_cache_dir

    refs = list(dict.fromkeys(refs))
    own = {ref: name for name, ref in image_refs(options).items()}
    unknown = [r for r in refs if r.startswith(f"{IMAGE_PREFIX}/") and r not in own]
    if unknown:
        raise ContainersError(f"the stack names {', '.join(unknown)}, which this project does not build (it builds "
                              f"{', '.join(sorted(own))})")
    # The pinned images first: a pull that fails ends the run before any build.
    to_run = {ref: _present_or_pulled(client, ref, progress) for ref in refs if ref not in own}
    names = [own[r] for r in refs if r in own]
    if names:
        try:
            packed = build_images(names, cache_dir or default_cache_dir(), progress, options=options)
        except ImageBuildError as exc:
            raise ContainersError(f"building the project's images failed: {exc}") from None
        if any([load_project_image(client, image, progress) for image in packed.values()]):
            remove_replaced_images(client, progress)
    return {ref: to_run.get(ref, ref) for ref in refs}


def remove_replaced_images(client: docker.DockerClient, progress: Progress) -> None:
    """Remove the project's images that lost their tag to a newer load and that no container uses (Docker's prune
    of dangling images, only those with the project's label)."""
    from docker.errors import DockerException

    try:
        pruned = client.images.prune(filters={"dangling": True, "label": IMAGE_MARK})
    except DockerException as exc:
        progress(f"could not remove the project's images that newer ones replaced: {one_line(str(exc))}")
        return
    if any("Untagged" in item or "Deleted" in item for item in pruned.get("ImagesDeleted") or []):
        reclaimed = (pruned.get("SpaceReclaimed") or 0) / 1e6
        progress(f"removed the project's images that newer builds replaced ({reclaimed:.0f} MB)")


def immich_images(spec: StackSpec, tag: str, overlay: str) -> dict[str, str]:
    """The Deployments that run an Immich image, each with its image at release ``tag``."""
    images = {name: ref for name, c in spec.containers.items() if (ref := immich_image_at(c.image, tag))}
    if not images:
        raise ContainersError(f"stack/overlays/{overlay} runs none of Immich's images "
                              f"({', '.join(IMMICH_IMAGE_NAMES)}): there is no Immich to run at {tag}")
    return images


def build_options(immich_tag: str | None) -> BuildOptions | None:
    """How to build the project's images for Immich ``immich_tag``: the API double that reports that release."""
    return BuildOptions.for_immich_tag(immich_tag) if immich_tag else None
