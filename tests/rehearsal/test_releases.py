"""What a release is made of before anything is deployed: a git ref's own stack/ rendered whole (or refused in
one line), an Immich tag on the current stack, where a test deployment is placed, the suite's mark, and the report
of what moved between two releases."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest

from immich_conformance import REPO_ROOT
from immich_conformance.rehearsal.release_report import environment_changes, image_changes
from immich_conformance.rehearsal.releases import RehearsalError, resolve
from immich_conformance.stack_checks.rendering import StackConfigError
from immich_conformance.targets.kinds import CLUSTER_SCOPED, MANAGED_BY, OWNER
from immich_conformance.targets.ownership import mark, refs_of
from immich_conformance.targets.stack_source import Placement, StackSource, ensure_test_secrets, host_folders

from .git_refs import commit_of_head_with, edit_yaml, show

SERVER_DEPLOYMENT = "stack/base/immich-server/deployment.yaml"


@pytest.fixture(scope="module")
def rendered() -> list[dict]:
    ensure_test_secrets(lambda message: None)
    return StackSource("ci").render()


def with_server_env(name: str, value: str) -> str:
    def add(doc: dict) -> None:
        doc["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": name, "value": value})
    return edit_yaml(SERVER_DEPLOYMENT, add)


def test_a_tag_moves_only_the_immich_images(rendered: list[dict]) -> None:
    release = resolve("v3.1.0")
    assert not release.whole
    moved = release.stack.render()
    assert image_changes({d["metadata"]["name"]: c["image"] for d in rendered if d.get("kind") == "Deployment"
                          for c in d["spec"]["template"]["spec"]["containers"]},
                         {d["metadata"]["name"]: c["image"] for d in moved if d.get("kind") == "Deployment"
                          for c in d["spec"]["template"]["spec"]["containers"]}) == [
        "immich-machine-learning: localhost/immich-conformance/immich-machine-learning:v3.0.3 -> "
        "localhost/immich-conformance/immich-machine-learning:v3.1.0",
        "immich-server: localhost/immich-conformance/immich-server:v3.0.3 -> "
        "localhost/immich-conformance/immich-server:v3.1.0"]
    assert environment_changes(rendered, moved) == []


def test_a_git_ref_deploys_its_own_stack_whole(tmp_path: Path, rendered: list[dict]) -> None:
    status = git_status()
    sha = commit_of_head_with({SERVER_DEPLOYMENT: with_server_env("IMMICH_CONFORMANCE_REF_MARK", "to")}, "env")
    release = resolve(sha, workdir=tmp_path)
    assert release.whole and sha[:12] in release.origin
    assert release.stack.stack_dir.is_relative_to(tmp_path)
    assert environment_changes(rendered, release.stack.render()) == [
        "immich-server/immich-server: IMMICH_CONFORMANCE_REF_MARK added ('to')"]
    assert git_status() == status, "the work tree and index are left as they were"


def git_status() -> str:
    return subprocess.run(["git", "status", "--porcelain"], cwd=REPO_ROOT, capture_output=True, text=True).stdout


def test_a_ref_that_does_not_render_is_refused_before_anything_runs(tmp_path: Path) -> None:
    def drop_tag(doc: dict) -> None:
        doc["images"] = [i for i in doc["images"] if i["name"] != "ghcr.io/immich-app/immich-server"]
    sha = commit_of_head_with({"stack/base/kustomization.yaml": edit_yaml("stack/base/kustomization.yaml",
                                                                          drop_tag)}, "no server tag")
    with pytest.raises(RehearsalError, match="does not pin ghcr.io/immich-app/immich-server"):
        resolve(sha, workdir=tmp_path)
    broken = commit_of_head_with({"stack/overlays/ci/kustomization.yaml":
                                  show("stack/overlays/ci/kustomization.yaml") + "resources:\n- ../nowhere\n"},
                                 "broken overlay")
    with pytest.raises(RehearsalError, match=rf"git ref {broken[:12]}.* does not render"):
        resolve(broken, workdir=tmp_path)


def test_a_ref_that_does_not_exist_is_refused() -> None:
    with pytest.raises(RehearsalError, match="neither an Immich release tag"):
        resolve("refs/heads/no-such-branch-anywhere")


def test_beside_production_the_cluster_chooses_node_ports_and_folders_move(rendered: list[dict]) -> None:
    placed = Placement("immich-test", PurePosixPath("/var/tmp/scratch")).apply_to(rendered)
    assert {d["metadata"].get("namespace") for d in placed if d["kind"] != "Namespace"
            and d["kind"] not in CLUSTER_SCOPED} == {"immich-test"}
    assert {d["metadata"]["name"] for d in placed if d["kind"] in CLUSTER_SCOPED} == {"immich-test-pod-security"}
    assert [d["metadata"]["name"] for d in placed if d["kind"] == "Namespace"] == ["immich-test"]
    assert not [p for d in placed if d["kind"] == "Service" for p in d["spec"]["ports"] if "nodePort" in p]
    assert host_folders(placed) == {"nas": "/var/tmp/scratch/nas/immich",
                                    "postgres": "/var/tmp/scratch/internal_drive/postgres",
                                    "models": "/var/tmp/scratch/internal_drive/model-cache"}
    ml = next(d for d in placed if d["kind"] == "Deployment" and d["metadata"]["name"] == "immich-machine-learning")
    ml_library = [v["hostPath"]["path"] for v in ml["spec"]["template"]["spec"]["volumes"] if v["name"] == "library"]
    assert ml_library == ["/var/tmp/scratch/nas/immich"]
    # the stack's own namespace keeps the stack's node ports
    own = Placement().apply_to(rendered)
    assert {p["nodePort"] for d in own if d["kind"] == "Service" for p in d["spec"]["ports"] if "nodePort" in p} \
        == {30283, 30080}
    assert host_folders(own) == host_folders(rendered)


@pytest.mark.parametrize(("placement", "message"), [
    (Placement("immich-test"), "--namespace immich-test needs --scratch DIR"),
    (Placement("immich-test", PurePosixPath("scratch")), "give an absolute path"),
])
def test_a_placement_that_could_share_production_folders_is_refused(placement: Placement, message: str) -> None:
    with pytest.raises(StackConfigError, match=message):
        placement.check()


def test_every_object_the_suite_applies_carries_its_mark(rendered: list[dict]) -> None:
    marked = mark(Placement().apply_to(rendered))
    assert all(d["metadata"]["labels"][MANAGED_BY] == OWNER for d in marked)
    templates = [d["spec"]["template"] for d in marked if "template" in d.get("spec", {})]
    assert templates and all(t["metadata"]["labels"][MANAGED_BY] == OWNER for t in templates)
    assert not any(MANAGED_BY in (d["metadata"].get("labels") or {}) for d in rendered), \
        "stack/ itself carries no mark: a person's own deployment is never the suite's"
    assert len(refs_of(marked)) == len([d for d in marked if d["kind"] != "Namespace"
                                        and d["kind"] not in CLUSTER_SCOPED]), "prune looks at namespaced objects only"


def rehearse(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "immich_conformance.cli", "rehearse", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)


def test_a_kubeconfig_that_answers_nothing_is_one_message(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(f"""apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "https://127.0.0.1:{port}", insecure-skip-tls-verify: true}}}}]
users: [{{name: u, user: {{token: t}}}}]
contexts: [{{name: x, context: {{cluster: c, user: u}}}}]
current-context: x
""")
    for args in (("--kubeconfig", str(kubeconfig)), ("--kubeconfig", str(tmp_path / "missing"))):
        result = rehearse("--reports", str(tmp_path / "reports"), "--from", "v3.0.3", "--to", "v3.1.0", *args)
        assert result.returncode == 2, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("immich-conformance rehearse: "), result.stderr
        assert ("does not answer" in lines[0]) if args[1] == str(kubeconfig) else ("no such file" in lines[0])
        assert not (tmp_path / "reports").exists()


def test_namespace_without_scratch_is_refused_by_rehearse(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    result = rehearse("--reports", str(tmp_path / "r"), "--kubeconfig", str(kubeconfig), "--from", "v3.0.3", "--to",
                      "v3.1.0", "--namespace", "immich-test")
    assert result.returncode == 2 and "needs --scratch DIR" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_a_ref_whose_immich_images_name_two_releases_is_refused(tmp_path: Path) -> None:
    def machine_learning_behind(doc: dict) -> None:
        doc["images"] = [i for i in doc["images"] if i["name"] != "ghcr.io/immich-app/immich-machine-learning"]
        doc["images"].append({"name": "ghcr.io/immich-app/immich-machine-learning", "newTag": "v3.0.2"})
    sha = commit_of_head_with({"stack/base/kustomization.yaml": edit_yaml("stack/base/kustomization.yaml",
                                                                          machine_learning_behind)}, "two releases")
    with pytest.raises(RehearsalError, match="immich-machine-learning at v3.0.2: one Immich release"):
        resolve(sha, workdir=tmp_path)

    def ci_server_behind(doc: dict) -> None:
        server = next(i for i in doc["images"] if i["name"] == "ghcr.io/immich-app/immich-server")
        server["newTag"] = "v3.0.2"
    sha = commit_of_head_with({"stack/overlays/ci/kustomization.yaml": edit_yaml(
        "stack/overlays/ci/kustomization.yaml", ci_server_behind)}, "ci overlay on another release")
    with pytest.raises(RehearsalError, match=r"overlays/ci deploys .*immich-server:v3\.0\.2, not Immich v3\.0\.3"):
        resolve(sha, workdir=tmp_path)


def test_test_deployments_make_their_own_password_for_every_secret_file(rendered: list[dict]) -> None:
    """ensure_test_secrets (run by the fixture) fills each secret of the kind overlay with a random value, never the
    example's (the placeholder check would refuse it on a real overlay, Redis and Postgres would run with it)."""
    from immich_conformance import STACK_DIR

    def _env_file(text: str) -> dict[str, str]:
        return dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))

    examples = sorted((STACK_DIR / "overlays" / "kind" / "secrets").glob("*.env.example"))
    assert "redis.env.example" in [e.name for e in examples]
    for example in examples:
        made, wanted = _env_file(example.with_suffix("").read_text()), _env_file(example.read_text())
        assert made.keys() == wanted.keys(), example.name
        assert all(len(made[key]) >= 32 and made[key] != wanted[key] for key in wanted), example.name
