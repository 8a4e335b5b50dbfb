"""The offline cluster's containerd keeps no older build of a name: the kubelet's side of containerd (CRI) names each
image a pod uses by its id too (``sha256:<config digest>``), and a newer import of the name leaves that id name holding
the older build; the import removes it, and keeps an id name whose image still has another name."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest

from immich_conformance.containers.docker_images import archive_image_id
from immich_conformance.images.oci import ImageConfig, PackedImage, pack_image
from immich_conformance.images.recipes import IMAGE_PREFIX
from immich_conformance.offline_cluster.containerd_images import ContainerdImages

from ..shared_cluster import SharedCluster

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="the offline cluster needs root (containerd, kubelet, iptables)"),
]


def one_file_image(folder: Path, ref: str) -> PackedImage:
    """An image of one file whose content is new at each call: each is another build."""
    root = folder / uuid.uuid4().hex
    root.mkdir(parents=True)
    (root / "build").write_text(uuid.uuid4().hex)
    return pack_image(root, ref, ImageConfig(entrypoint=["/build"]), root.with_suffix(".tar"))


def test_a_newer_import_removes_the_older_build_and_nothing_else(offline_cluster: SharedCluster,
                                                                  tmp_path: Path) -> None:
    said: list[str] = []
    cluster = offline_cluster.cluster
    images = cluster.images()
    images.progress = said.append
    run = uuid.uuid4().hex[:8]
    name, other_name = f"{IMAGE_PREFIX}/replaced-{run}:test", f"{IMAGE_PREFIX}/still-named-{run}:test"
    older, kept = one_file_image(tmp_path, name), one_file_image(tmp_path, name)
    older_id, kept_id = archive_image_id(older.archive), archive_image_id(kept.archive)
    try:
        images.import_archives([older.archive])
        images.tag(name, older_id)  # the id name CRI gives an image a pod used
        images.import_archives([kept.archive])
        assert older_id not in images.present(), "the older build is still held by its id name"
        assert any("newer imports replaced" in line for line in said), said
        images.tag(name, kept_id)
        images.tag(name, other_name)
        images.import_archives([one_file_image(tmp_path, name).archive])
        present = images.present()
        assert present.get(kept_id) == present.get(other_name) == kept.manifest_digest, \
            "an id name whose image still has another name was removed"
    finally:
        present = images.present()
        images.remove([ref for ref in (name, other_name, older_id, kept_id) if ref in present])


def test_a_removal_that_fails_is_said_and_the_import_goes_on() -> None:
    """A clean-up: the images imported are there whatever it does (say the kubelet removed an id name meanwhile)."""
    said: list[str] = []
    failing_ctr = [sys.executable, "-c", "import sys; sys.exit('ctr: image \"sha256:0\": not found')"]
    ContainerdImages(failing_ctr, said.append).remove_replaced({"sha256:0": "sha256:1", "named:1": "sha256:2"})
    assert len(said) == 1 and "not found" in said[0] and "the next import tries again" in said[0], said
