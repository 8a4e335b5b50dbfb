"""`immich-conformance check-stack` on an edited copy of stack/ (--stack): it fails, naming the problem, for a
mistake in any part of the static proof, and a kustomize error is one line in the stack's terms."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from immich_conformance import REPO_ROOT
from immich_conformance.cli import main
from immich_conformance.stack_checks.mutations import FILLED_AUD, FILLED_HOSTNAME, FILLED_TEAM

CLI = [sys.executable, "-m", "immich_conformance.cli"]


@pytest.fixture
def stack_copy(tmp_path: Path, stack_dir: Path) -> Path:
    copy = tmp_path / "stack"
    shutil.copytree(stack_dir, copy)
    for real in copy.glob("overlays/*/secrets/*.env"):
        real.unlink()
    return copy


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{path} does not hold {old!r} once"
    path.write_text(text.replace(old, new))


def check_stack(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["check-stack", *args])
    out, err = capsys.readouterr()
    return code, out, err


def run_command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "check-stack", *args], capture_output=True, text=True, timeout=300, cwd=REPO_ROOT,
                          check=False)


def test_the_unchanged_copy_passes_with_checkov(stack_copy: Path) -> None:
    done = run_command("k3s", "--example-secrets", "--stack", str(stack_copy))
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.fullmatch(r"k3s: \d+ objects rendered, ok\n", done.stdout)


@pytest.mark.parametrize(("file", "old", "new", "named"), [
    ("base/origin-proxy/deployment.yaml", "privileged: false", "privileged: true",
     "Deployment.immich.origin-proxy: CKV_K8S_16"),
    ("base/immich-server/deployment.yaml", "automountServiceAccountToken: false", "automountServiceAccountToken: true",
     "Deployment.immich.immich-server: CKV_K8S_38"),
], ids=["privileged-proxy", "server-mounts-token"])
def test_the_command_fails_on_what_checkov_finds(stack_copy: Path, file: str, old: str, new: str, named: str) -> None:
    edit(stack_copy / file, old, new)
    done = run_command("k3s", "--example-secrets", "--stack", str(stack_copy))
    assert done.returncode == 1, done.stdout + done.stderr
    assert re.search(r"^k3s: \d+ objects rendered, 1 problem\(s\)$", done.stdout, re.M), done.stdout
    assert f"[checkov] {named}" in done.stdout, done.stdout


@pytest.mark.parametrize(("file", "old", "new", "named"), [
    ("base/origin-proxy/envoy.yaml", "                  require_expiration: true\n", "",
     "does not set require_expiration: true"),
    ("base/origin-proxy/envoy.yaml", "              - match: {prefix: /}\n                requires:",
     "              - match: {prefix: /api}\n                requires:", "no jwt_authn rule covers route {prefix: /}"),
    ("base/kustomization.yaml", "  digest: sha256:bcf63357191b76a916ae5eb93464d65c07511da41e3bf7a8416db519b40b1c23\n",
     "", "[images-pinned] Deployment/immich-postgres container postgres"),
    ("overlays/k3s/settings.yaml", 'lanNodePort: "30283"', 'lanNodePort: "8080"',
     "[node-ports] Service/immich-server: nodePort 8080 is outside 30000-32767"),
    ("base/kustomization.yaml", "- name: ghcr.io/immich-app/immich-server\n  newTag: v3.0.3\n",
     "- name: ghcr.io/immich-app/immich-server\n",
     "[immich-release] Deployment/immich-server container immich-server: image 'ghcr.io/immich-app/immich-server' "
     "names no Immich release tag"),
    ("base/kustomization.yaml", "- name: ghcr.io/immich-app/immich-machine-learning\n  newTag: v3.0.3\n",
     "- name: ghcr.io/immich-app/immich-machine-learning\n  newTag: v3.0.2\n",
     "[immich-release] immich: the Immich images name different releases (immich-server v3.0.3, "
     "immich-machine-learning v3.0.2)"),
    ("base/redis/deployment.yaml", '        args: ["--requirepass", "$(REDIS_PASSWORD)"]\n', "",
     "[redis-password] Deployment/immich-redis: Redis runs without a password"),
    ("base/immich-server/deployment.yaml", "        - name: REDIS_PASSWORD\n", "        - name: REDIS_PASSWD\n",
     "[redis-password] Deployment/immich-server: REDIS_PASSWORD is not set"),
], ids=["no-expiration", "jwt-rule-api-only", "postgres-without-digest", "node-port-out-of-range",
        "server-newtag-deleted", "releases-disagree", "redis-without-password", "server-without-redis-password"])
def test_the_command_fails_on_what_our_checks_find(stack_copy: Path, capsys: pytest.CaptureFixture[str], file: str,
                                                   old: str, new: str, named: str) -> None:
    edit(stack_copy / file, old, new)
    code, out, _ = check_stack(capsys, "k3s", "--example-secrets", "--skip-checkov", "--stack", str(stack_copy))
    assert code == 1 and named in out, out


def _fill_in_overlay(overlay: Path) -> None:
    (overlay / "secrets" / "database.env").write_text("DB_PASSWORD=9d2f7c41ab0e6358e1c2b7a4\n")
    (overlay / "secrets" / "redis.env").write_text("REDIS_PASSWORD=5be0c3a9f17d42e86a0b9c1d\n")
    (overlay / "secrets" / "cloudflared.env").write_text("TUNNEL_TOKEN=eyJhIjoiMTIzIn0ExampleOfARealOne\n")
    edit(overlay / "origin-proxy.env", "your-team.cloudflareaccess.com", f"{FILLED_TEAM}.cloudflareaccess.com")
    edit(overlay / "origin-proxy.env", "SetTheAccessApplicationAudTag", FILLED_AUD)
    edit(overlay / "cloudflared.yaml", "photos.example.com", FILLED_HOSTNAME)
    edit(overlay / "cloudflared.yaml", "teamName: your-team", f"teamName: {FILLED_TEAM}")
    edit(overlay / "cloudflared.yaml", "- SetTheAccessApplicationAudTag", f"- {FILLED_AUD}")


def test_a_filled_in_overlay_passes_and_an_example_secret_kept_fails(
        stack_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    overlay = stack_copy / "overlays" / "k3s"
    _fill_in_overlay(overlay)
    code, out, err = check_stack(capsys, "k3s", "--skip-checkov", "--stack", str(stack_copy))
    assert code == 0, out + err
    shutil.copyfile(overlay / "secrets" / "database.env.example", overlay / "secrets" / "database.env")
    code, out, _ = check_stack(capsys, "k3s", "--skip-checkov", "--stack", str(stack_copy))
    assert code == 1 and "1 problem(s)" in out, out
    assert ("[placeholders] Secret/immich-database-password" in out and
            "set DB_PASSWORD in stack/overlays/k3s/secrets/database.env" in out), out


def test_the_committed_placeholders_fail_a_real_check(stack_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    secrets = stack_copy / "overlays" / "k3s" / "secrets"
    for example in secrets.glob("*.env.example"):
        shutil.copyfile(example, secrets / example.name.removesuffix(".example"))
    code, out, _ = check_stack(capsys, "k3s", "--skip-checkov", "--stack", str(stack_copy))
    assert code == 1, out
    for fix in ("set TUNNEL_TOKEN in stack/overlays/k3s/secrets/cloudflared.env",
                "set REDIS_PASSWORD in stack/overlays/k3s/secrets/redis.env",
                "set CF_TEAM_DOMAIN in stack/overlays/k3s/origin-proxy.env",
                "set Immich's public hostname in stack/overlays/k3s/cloudflared.yaml"):
        assert fix in out, out


@pytest.mark.parametrize(("file", "old", "new", "message"), [
    ("overlays/k3s/settings.yaml", '  lanNodePort: "30283"\n', "",
     "k3s: stack/overlays/k3s/settings.yaml has no 'lanNodePort' under data: set it"),
    ("overlays/k3s/settings.yaml", "  nasLibraryPath: /mnt/nas/immich\n", "",
     "k3s: stack/overlays/k3s/settings.yaml has no 'nasLibraryPath' under data: set it"),
], ids=["lan-node-port-missing", "nas-path-missing"])
def test_a_kustomize_error_is_one_line_in_the_stacks_terms(stack_copy: Path, capsys: pytest.CaptureFixture[str],
                                                           file: str, old: str, new: str, message: str) -> None:
    edit(stack_copy / file, old, new)
    code, out, err = check_stack(capsys, "k3s", "--example-secrets", "--skip-checkov", "--stack", str(stack_copy))
    assert code == 1 and not out
    assert err.startswith(message) and err.count("\n") == 1, err
    assert "Traceback" not in err and "accumulat" not in err and "/tmp" not in err


def test_a_folder_that_is_not_a_stack_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = check_stack(capsys, "--stack", str(tmp_path), "--skip-checkov")
    assert code == 1 and err == f"immich-conformance check-stack: {tmp_path} is not a stack: it has no " \
                                "base/kustomization.yaml\n"


def test_a_missing_overlay_file_is_named(stack_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (stack_copy / "overlays" / "k3s" / "origin-proxy.env").unlink()
    code, out, err = check_stack(capsys, "k3s", "--example-secrets", "--skip-checkov", "--stack", str(stack_copy))
    assert code == 1 and not out
    assert err == "k3s: stack/overlays/k3s/origin-proxy.env is missing: stack/overlays/k3s (or a base it builds on) " \
                  "names it; create it or restore it\n"
