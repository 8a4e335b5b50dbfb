"""Which images a containers run uses: a reference Docker holds is used as it is; the project's own are loaded from
their archives only when Docker lacks that image id under that tag."""

from __future__ import annotations

import io
import tarfile
import uuid

import docker
import pytest

from immich_conformance.containers.docker_images import (
    MIRROR_ENV,
    archive_image_id,
    mirrored,
    prepare_images,
    remove_replaced_images,
)
from immich_conformance.containers.engine import ContainersError
from immich_conformance.images.build import build_images, default_cache_dir
from immich_conformance.images.recipes import IMAGE_MARK, IMAGE_PREFIX, image_refs
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
    older = _imported(client, ref, marked=True)  # an older build of the project's under the tag
    messages.clear()
    prepare_images(client, [ref], messages.append)
    assert client.images.get(ref).id == wanted
    assert older not in {image.id for image in client.images.list(all=True)}, "the replaced build is left in Docker"
    assert any("newer builds replaced" in m for m in messages), messages


def _imported(client: docker.DockerClient, ref: str, *, marked: bool) -> str:
    """A one-file image (content unique to this call) under ``ref``; its id."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        content = uuid.uuid4().bytes
        member = tarfile.TarInfo("content")
        member.size = len(content)
        tar.addfile(member, io.BytesIO(content))
    repository, tag = ref.rsplit(":", 1)
    changes = ['CMD ["/content"]'] + ([f"LABEL {IMAGE_MARK}=test"] if marked else [])
    client.api.import_image_from_data(data.getvalue(), repository=repository, tag=tag, changes=changes)
    return client.images.get(ref).id


def test_an_image_of_the_project_a_newer_one_replaced_is_removed_and_nothing_else(client: docker.DockerClient) -> None:
    run = uuid.uuid4().hex[:8]
    ours, in_use, theirs = (f"{IMAGE_PREFIX}/replaced-{run}:1", f"{IMAGE_PREFIX}/in-use-{run}:1",
                            f"registry.conformance.test/unmarked-{run}:1")
    replaced = _imported(client, ours, marked=True)
    used = _imported(client, in_use, marked=True)
    container = client.containers.create(in_use)  # created, never started: it still holds its image
    not_ours = _imported(client, theirs, marked=False)
    newer = [_imported(client, ref, marked=ref != theirs) for ref in (ours, in_use, theirs)]
    try:
        said: list[str] = []
        remove_replaced_images(client, said.append)
        left = {image.id for image in client.images.list(all=True)}
        assert replaced not in left, "an image of the project's that lost its tag to a newer one is still there"
        assert used in left, "an image a container uses was removed"
        assert not_ours in left, "an untagged image without the project's label was removed"
        assert set(newer) <= left
        assert len(said) == 1 and "newer builds replaced" in said[0], said
    finally:
        container.remove()
        for image in {*newer, used, not_ours} & {image.id for image in client.images.list(all=True)}:
            client.images.remove(image, force=True)


def test_mirrored_references_keep_their_path() -> None:
    assert mirrored("ghcr.io/immich-app/immich-server:v3.0.3", "127.0.0.1:5000") == \
        "127.0.0.1:5000/immich-app/immich-server:v3.0.3"
    assert mirrored("docker.io/valkey/valkey:9@sha256:abc", "mirror:5000") == "mirror:5000/valkey/valkey:9@sha256:abc"
    assert mirrored("valkey/valkey:9", "mirror:5000") == "mirror:5000/valkey/valkey:9"
