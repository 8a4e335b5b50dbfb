"""The doctor's settings come from the overlay as kustomize renders it, never from a second reading of its files."""

from __future__ import annotations

from immich_conformance.doctor.settings import from_overlay


def test_the_k3s_overlay_gives_its_paths_port_namespace_hostname_and_requests() -> None:
    s = from_overlay("k3s")
    assert (s.nas_path, s.postgres_path, s.models_path) == ("/mnt/nas/immich",
                                                            "/mnt/internal_drive/config/immich/postgres",
                                                            "/mnt/internal_drive/config/immich/model-cache")
    assert (s.node_port, s.namespace, s.service) == (30283, "immich", "immich-server")
    assert s.public_hostname == "photos.example.com"
    assert s.postgres_uid == 999
    # immich-server 512Mi, machine learning 1Gi, Postgres 256Mi, valkey 64Mi, origin proxy 96Mi, cloudflared 64Mi
    assert s.memory_requests == (512 + 1024 + 256 + 64 + 96 + 64) * 1024 ** 2


def test_the_ci_overlay_takes_the_public_hostname_of_the_edge_standin() -> None:
    s = from_overlay("ci", nas_fstypes=("ext4",))
    assert s.public_hostname == "photos.conformance.test"
    assert s.node_port == 30283 and s.nas_fstypes == ("ext4",)
