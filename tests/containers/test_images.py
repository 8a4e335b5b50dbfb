"""Which images a containers run uses: a reference Docker holds is used as it is; the project's own are loaded from
their archives only when Docker lacks that image id under that tag."""

from __future__ import annotations

import uuid

import docker
import pytest

from immich_conformance.containers.docker_images import MIRROR_ENV, archive_image_id, mirrored, prepare_images
from immich_conformance.containers.engine import ContainersError
from immich_conformance.images.build import build_images, default_cache_dir
from immich_conformance.images.recipes import image_refs
from immich_conformance.procs import free_port

pytestmark = pytest.mark.slow


def test_a_pinned_reference_present_locally_is_used_without_a_pull(client: docker.DockerClient,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    redis = image_refs()["redis"]
    prepare_images(client, [redis], lambda message: None)
    present = f"registry.conformance.test/present-{uuid.uuid4().hex[:8]}:1"
    client.images.get(redis).tag(present)
    # Any pull would go to a loopback port nobody listens on, and fail.
    monkeypatch.setenv(MIRROR_ENV, f"127.0.0.1:{free_port()}")
    try:
        assert prepare_images(client, [present], lambda message: None) == {present: present}
        with pytest.raises(ContainersError, match=r"cannot pull registry\.conformance\.test/absent:1 .*--images local"):
            prepare_images(client, ["registry.conformance.test/absent:1"], lambda message: None)
    finally:
        client.images.remove(present)


def test_a_project_image_is_loaded_only_when_docker_lacks_its_id(client: docker.DockerClient) -> None:
    ref = image_refs()["redis"]
    packed = build_images(["redis"], default_cache_dir(), lambda message: None)["redis"]
    wanted = archive_image_id(packed.archive)
    messages: list[str] = []
    prepare_images(client, [ref], messages.append)
    assert client.images.get(ref).id == wanted
    messages.clear()
    prepare_images(client, [ref], messages.append)
    assert not any(m.startswith("loaded") for m in messages), messages  # same id under that tag: no load
    other = image_refs()["postgres"]
    prepare_images(client, [other], lambda message: None)
    client.images.get(other).tag(ref)  # the tag now names another image
    prepare_images(client, [ref], messages.append)
    assert any(m.startswith(f"loaded {ref}") for m in messages), messages
    assert client.images.get(ref).id == wanted


def test_mirrored_references_keep_their_path() -> None:
    assert mirrored("ghcr.io/immich-app/immich-server:v3.0.3", "127.0.0.1:5000") == \
        "127.0.0.1:5000/immich-app/immich-server:v3.0.3"
    assert mirrored("docker.io/valkey/valkey:9@sha256:abc", "mirror:5000") == "mirror:5000/valkey/valkey:9@sha256:abc"
    assert mirrored("valkey/valkey:9", "mirror:5000") == "mirror:5000/valkey/valkey:9"
