"""How ``immich-conformance rehearse`` answers options that do not go together, before anything is deployed; and the
release bookkeeping it relies on."""

from __future__ import annotations

from pathlib import Path

import pytest

from immich_conformance.images.recipes import BuildOptions
from immich_conformance.versions import immich_image_at

from .gate_runs import rehearse


@pytest.mark.parametrize(("args", "message"), [
    (("--runtime", "containers", "--kubeconfig", "/nowhere"), "--kubeconfig: for a cluster"),
    (("--runtime", "containers", "--cluster", "offline", "--overlay", "ci"), "--cluster, --overlay: for a cluster"),
    (("--cluster", "offline", "--images", "local"), "--images and --keep-sandbox go with --runtime containers"),
    (("--runtime", "containers"), "give both --from and --to"),
    (("--runtime", "containers", "--images", "pinned", "--from", "v3.0.3"), "give both --from and --to"),
    ((), "--cluster offline, --kubeconfig PATH / KUBECONFIG, or --runtime containers"),
    (("--runtime", "containers", "--images", "local", "--from", "no-such-ref-or-tag"),
     "'no-such-ref-or-tag' is neither an Immich release tag"),
    (("--target", "sandbox"), "--target sandbox rehearses in the stack's containers: add --runtime containers"),
    (("--target", "cluster", "--runtime", "containers"), "--runtime containers runs the stack as containers"),
    (("--runtime", "cluster"), "--runtime cluster is deprecated, use --target cluster"),
], ids=["containers-kubeconfig", "containers-cluster", "cluster-images", "pinned-needs-tags", "pinned-needs-both",
        "nowhere", "bad-ref", "sandbox-needs-containers", "cluster-and-containers", "old-runtime-cluster"])
def test_options_that_do_not_go_together_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     args: tuple[str, ...], message: str) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    result = rehearse(tmp_path / "reports", *args, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "reports").exists(), "nothing is written before the options are known to be right"


@pytest.mark.parametrize(("ref", "expected"), [
    ("ghcr.io/immich-app/immich-server:v3.0.3", "ghcr.io/immich-app/immich-server:v3.1.0"),
    ("ghcr.io/immich-app/immich-machine-learning:v3.0.3@sha256:" + "0" * 64,
     "ghcr.io/immich-app/immich-machine-learning:v3.1.0"),
    ("localhost/immich-conformance/immich-server:v3.0.3", "localhost/immich-conformance/immich-server:v3.1.0"),
    ("registry.local:5000/immich-server", "registry.local:5000/immich-server:v3.1.0"),
    ("docker.io/valkey/valkey:8-bookworm", None),
    ("ghcr.io/immich-app/postgres:14-vectorchord0.4.3", None),
    ("localhost/immich-conformance/origin-proxy:v1.40.0", None),
])
def test_only_immich_images_move_to_another_release(ref: str, expected: str | None) -> None:
    assert immich_image_at(ref, "v3.1.0") == expected


def test_a_tag_names_the_double_build_that_stands_in_for_it() -> None:
    assert BuildOptions.for_immich_tag("v3.1.0") == BuildOptions(double_version="v3.1.0")
    broken = BuildOptions.for_immich_tag("v3.1.0-fail-migration-on-upgrade")
    assert broken == BuildOptions(double_version="v3.1.0", double_fault="fail-migration-on-upgrade")
    assert broken.double_tag == "v3.1.0-fail-migration-on-upgrade"
    assert BuildOptions.for_immich_tag("v3.1.0-rc.1") == BuildOptions(double_version="v3.1.0-rc.1")
