"""--target live against a running deployment (here: a sandbox started by the test), through a settings file."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from immich_conformance import REPO_ROOT
from immich_conformance.procs import wait_until
from immich_conformance.targets.sandbox import Sandbox


@pytest.fixture(scope="module")
def deployment() -> Iterator[Sandbox]:
    with Sandbox() as sandbox:
        yield sandbox


def settings_file(tmp_path: Path, sandbox: Sandbox, **overrides: object) -> Path:
    settings = {
        "lan_url": sandbox.lan.url,
        "public_url": f"http://{sandbox.public_hostname}",
        "public_connect": sandbox.external.url.removeprefix("http://"),
        "team_domain": sandbox.team_domain,
        "nas_path": str(sandbox.nas_root),
        "media_location": str(sandbox.media_location),
        **overrides,
    }
    path = tmp_path / "live.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in settings.items() if v is not None}))
    return path


def run_live(settings: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "features/", "--target", "live", "--live-config", str(settings),
         "-p", "no:cacheprovider", "-q", "-rs", *extra],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, **env},
    )


def secrets(sandbox: Sandbox) -> dict[str, str]:
    token = list(sandbox.service_token_headers.values())
    return {"IMMICH_API_KEY": sandbox.api_key, "CF_ACCESS_CLIENT_ID": token[0], "CF_ACCESS_CLIENT_SECRET": token[1]}


@pytest.mark.slow
def test_live_runs_the_harmless_scenarios_and_leaves_nothing(deployment: Sandbox, tmp_path: Path) -> None:
    result = run_live(settings_file(tmp_path, deployment), secrets(deployment))
    out = result.stdout
    assert result.returncode == 0, out[-4000:]
    assert " passed" in out and " failed" not in out
    assert "cannot reach the origin proxy directly" in out or "signing keys" in out
    assert "unless --allow-large-external is given" in out
    assert "cannot show what origin-proxy received" in out
    assert deployment.api_key not in out, "a secret was printed"
    wait_until(lambda: deployment.nas_upload_files() == set(), timeout=20, what="the NAS emptied of the suite's files")


@pytest.mark.parametrize(
    ("overrides", "env_change", "expected"),
    [
        ({"api_key": "x"}, {}, "unknown setting(s) api_key. Secrets are read from the environment"),
        ({"lan_url": None}, {}, "lan_url is missing"),
        ({"side": "moon"}, {}, "side='moon': use lan or internet"),
        ({}, {"IMMICH_API_KEY": ""}, "IMMICH_API_KEY is not set"),
        ({}, {"IMMICH_API_KEY": "wrong-key"}, "refused the API key in IMMICH_API_KEY (Invalid API key)"),
        ({"lan_url": "http://127.0.0.1:99999"}, {}, "lan_url='http://127.0.0.1:99999': the port must be a number"),
        ({"public_url": "https://"}, {}, "public_url='https://' has no host name"),
        ({"media_location": "data"}, {}, "media_location='data': give Immich's IMMICH_MEDIA_LOCATION"),
        ({}, {"CF_ACCESS_CLIENT_ID": "", "CF_ACCESS_CLIENT_SECRET": ""},
         "CF_ACCESS_CLIENT_ID and CF_ACCESS_CLIENT_SECRET not set: without an Access service token the internet "
         "path goes unchecked"),
        ({}, {"CF_ACCESS_CLIENT_SECRET": ""}, "CF_ACCESS_CLIENT_SECRET not set"),
    ],
    ids=["unknown key", "missing URL", "bad side", "missing API key", "wrong API key", "bad port", "empty host",
         "relative media location", "missing service token", "missing token secret"],
)
def test_bad_live_settings_get_one_clear_message(
    deployment: Sandbox, tmp_path: Path, overrides: dict, env_change: dict, expected: str
) -> None:
    env = {**secrets(deployment), **env_change}
    result = run_live(settings_file(tmp_path, deployment, **overrides), env)
    assert result.returncode == 4, result.stdout[-2000:] + result.stderr[-2000:]
    assert expected in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.slow
def test_lan_only_is_asked_for_and_checks_the_lan_path_alone(deployment: Sandbox, tmp_path: Path) -> None:
    env = {**secrets(deployment), "CF_ACCESS_CLIENT_ID": "", "CF_ACCESS_CLIENT_SECRET": ""}
    result = run_live(settings_file(tmp_path, deployment), env, "--lan-only")
    out = result.stdout
    assert result.returncode == 0, out[-4000:]
    assert "--lan-only: the internet path (the public hostname) is not checked in this run" in out
    assert " passed" in out.splitlines()[-1]


@pytest.mark.slow
def test_without_team_domain_only_the_redirect_checks_are_skipped_naming_it(deployment: Sandbox,
                                                                            tmp_path: Path) -> None:
    result = run_live(settings_file(tmp_path, deployment, team_domain=None), secrets(deployment))
    out = result.stdout
    assert result.returncode == 0, out[-4000:]
    assert "the live settings give no team_domain" in out
    assert " failed" not in out


@pytest.mark.slow
def test_a_media_location_that_is_not_the_servers_is_named(deployment: Sandbox, tmp_path: Path) -> None:
    result = run_live(settings_file(tmp_path, deployment, media_location="/photos"), secrets(deployment),
                      "-k", "lands_on_the_NAS or byte")
    out = result.stdout + result.stderr
    assert result.returncode == 4, out[-4000:]  # stopped before any scenario: a usage error
    assert f"media_location='/photos' is not where Immich at {deployment.lan.url} stores its files" in out, out[-4000:]
    assert f"set media_location: {deployment.nas} in the live settings" in out
    assert "is not in the subpath" not in out, "pathlib's own error, not the suite's"
