"""Every overlay renders, holds the whole system, and handles its secret files as stack/README.md says."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import pytest

from immich_conformance.stack_checks import RenderedOverlay, StackConfigError, missing_secret_files, render_overlay
from immich_conformance.stack_checks.manifests import Manifests
from immich_conformance.stack_checks.rendering import secret_sources

WORKLOADS = {"immich-server", "immich-machine-learning", "immich-postgres", "immich-redis", "origin-proxy",
             "cloudflared"}
SERVICES = {"immich-server", "immich-machine-learning", "immich-postgres", "immich-redis", "origin-proxy"}


def test_every_overlay_renders_the_whole_system(rendered: RenderedOverlay) -> None:
    m = Manifests(rendered.documents)
    assert {d["metadata"]["name"] for d in m.of_kind("Deployment")} == WORKLOADS
    assert {d["metadata"]["name"] for d in m.of_kind("Service")} == SERVICES
    assert [d["metadata"]["name"] for d in m.of_kind("Namespace")] == ["immich"]
    assert len(m.of_kind("NetworkPolicy")) >= 10
    namespaced = [d for d in rendered.documents if d["kind"] != "Namespace"]
    assert {d["metadata"].get("namespace") for d in namespaced} == {"immich"}


def test_local_settings_are_read_but_never_applied(rendered: RenderedOverlay) -> None:
    assert rendered.settings["nasLibraryPath"], "the overlay's settings.yaml was not read"
    names = {(d["kind"], d["metadata"]["name"]) for d in rendered.documents}
    assert ("ConfigMap", "stack-settings") not in names
    m = Manifests(rendered.documents)
    library = m.pod_template("immich-server").volume("library")
    assert library["hostPath"]["path"] == rendered.settings["nasLibraryPath"]
    lan = m.get("NetworkPolicy", "immich-server-from-lan")
    assert lan["spec"]["ingress"][0]["from"][0]["ipBlock"]["cidr"] == rendered.settings["lanCidr"]
    node_port = m.service("immich-server")["spec"]["ports"][0]["nodePort"]
    assert node_port == int(rendered.settings["lanNodePort"]) and isinstance(node_port, int)


def test_overlays_differ_only_where_their_settings_do(rendered_overlays: dict[str, RenderedOverlay]) -> None:
    assert {"k3s", "kind"} <= set(rendered_overlays)
    assert rendered_overlays["k3s"].settings["lanCidr"] != rendered_overlays["kind"].settings["lanCidr"]


def _secret_values(rendered: RenderedOverlay, prefix: str) -> dict[str, str]:
    secret = next(d for d in rendered.documents if d["kind"] == "Secret" and d["metadata"]["name"].startswith(prefix))
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


@pytest.fixture
def stack_copy(tmp_path: Path, stack_dir: Path) -> Path:
    copy = tmp_path / "stack"
    shutil.copytree(stack_dir, copy)
    for real in copy.glob("overlays/*/secrets/*.env"):
        real.unlink()
    return copy


def test_missing_secret_files_are_named_with_their_example(stack_copy: Path) -> None:
    missing = missing_secret_files(stack_copy / "overlays" / "k3s")
    assert {m.path.name for m in missing} == {"database.env", "redis.env", "cloudflared.env"}
    assert all(m.example is not None and m.example.name == m.path.name + ".example" for m in missing)
    with pytest.raises(StackConfigError) as raised:
        render_overlay("k3s", stack_copy)
    message = str(raised.value)
    assert "secrets/database.env is missing: cp " in message and "database.env.example" in message
    assert "Traceback" not in message


def test_real_secret_files_are_used_and_never_read_for_examples(stack_copy: Path) -> None:
    secrets = stack_copy / "overlays" / "k3s" / "secrets"
    for example in secrets.glob("*.env.example"):
        shutil.copyfile(example, secrets / example.name.removesuffix(".example"))
    (secrets / "database.env").write_text("DB_PASSWORD=RealPasswordNotForCi123\n")
    real = render_overlay("k3s", stack_copy)
    assert _secret_values(real, "immich-database-password")["DB_PASSWORD"] == "RealPasswordNotForCi123"
    examples = render_overlay("k3s", stack_copy, with_example_secrets=True)
    assert "RealPasswordNotForCi123" not in examples.text
    assert _secret_values(examples, "immich-database-password")["DB_PASSWORD"] != "RealPasswordNotForCi123"


def test_an_unknown_overlay_is_a_clear_error(stack_dir: Path) -> None:
    with pytest.raises(StackConfigError, match=r"no overlay 'staging'.*overlays: .*k3s"):
        render_overlay("staging", stack_dir)


def test_secret_examples_are_committed_and_real_files_ignored(stack_dir: Path) -> None:
    gitignore = (stack_dir.parent / ".gitignore").read_text().splitlines()
    assert "stack/**/secrets/*.env" in gitignore
    for overlay in ("k3s", "kind"):
        sources = secret_sources(stack_dir / "overlays" / overlay)
        assert sorted(p.name for p in sources) == ["cloudflared.env", "database.env", "redis.env"]
        for source in sources:
            assert source.parent.name == "secrets"
            assert source.with_name(source.name + ".example").is_file(), f"{source}.example is not committed"
