"""start.sh: every setting checked, a missing or bad one named; the filled-in config keeps its guarantees."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from immich_conformance.origin_proxy import START_SCRIPT

GOOD = {
    "CF_TEAM_DOMAIN": "myteam.cloudflareaccess.com",
    "CF_ACCESS_AUD": "4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2",
    "UPSTREAM_ADDRESS": "immich-server:2283",
    "ORIGIN_PROXY_CHECK_ONLY": "1",
}


def run_start(tmp_path: Path, **overrides: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in GOOD}
    env.update(GOOD, RENDER_DIR=str(tmp_path))
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return subprocess.run(["/bin/sh", str(START_SCRIPT)], env=env, capture_output=True, text=True, timeout=60)


def test_good_settings_render_a_config_envoy_accepts(tmp_path: Path) -> None:
    result = run_start(tmp_path)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "OK" in result.stdout + result.stderr


@pytest.mark.parametrize("name", ["CF_TEAM_DOMAIN", "CF_ACCESS_AUD", "UPSTREAM_ADDRESS"])
def test_a_missing_setting_stops_the_proxy_naming_it(name: str, tmp_path: Path) -> None:
    result = run_start(tmp_path, **{name: None})
    assert result.returncode == 2
    assert f"{name} is not set" in result.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CF_TEAM_DOMAIN", "team domain with spaces"),
        ("CF_ACCESS_AUD", "aud'; rm -rf /"),
        ("UPSTREAM_ADDRESS", "immich-server"),
        ("JWKS_URL", "http://myteam.cloudflareaccess.com/cdn-cgi/access/certs"),
        ("MAX_BODY_BYTES", "100MB"),
        ("LISTEN_PORT", "http"),
        ("JWKS_CACHE_SECONDS", "0"),
    ],
)
def test_a_bad_setting_stops_the_proxy_naming_it(name: str, value: str, tmp_path: Path) -> None:
    result = run_start(tmp_path, **{name: value})
    assert result.returncode == 2
    assert f"{name}=" in result.stderr and "is not valid" in result.stderr


def test_an_unreadable_ca_bundle_is_named(tmp_path: Path) -> None:
    result = run_start(tmp_path, JWKS_CA_FILE="/nonexistent/ca.pem")
    assert result.returncode == 2
    assert "JWKS_CA_FILE=/nonexistent/ca.pem cannot be read" in result.stderr


def test_filled_in_config_keeps_long_uploads_and_the_limit(tmp_path: Path) -> None:
    assert run_start(tmp_path).returncode == 0
    config = yaml.safe_load((tmp_path / "origin-proxy-envoy.yaml").read_text())
    origin = config["static_resources"]["listeners"][0]
    hcm = origin["filter_chains"][0]["filters"][0]["typed_config"]
    assert hcm["request_timeout"] == "0s"
    assert int(hcm["stream_idle_timeout"].rstrip("s")) >= 600
    routes = hcm["route_config"]["virtual_hosts"][0]["routes"]
    assert all(r["route"]["timeout"] == "0s" for r in routes)
    filters = [f["name"] for f in hcm["http_filters"]]
    assert filters == ["envoy.filters.http.jwt_authn", "envoy.filters.http.body_size_limit",
                       "envoy.filters.http.router"]
    limit = hcm["http_filters"][1]["typed_config"]["max_request_bytes"]
    assert limit == 104857600
    unlimited = [r for r in routes if "typed_per_filter_config" in r]
    assert [r["match"].get("path") for r in unlimited] == ["/api/socket.io/"]
    conditions = {h["name"]: h for h in unlimited[0]["match"]["headers"]}
    assert conditions[":method"]["string_match"] == {"exact": "GET"}
    assert {"upgrade", "content-length", "transfer-encoding"} <= conditions.keys()
    limited = [r for r in routes if "typed_per_filter_config" not in r]
    assert all({"upgrade_type": "websocket", "enabled": False} in r["route"]["upgrade_configs"] for r in limited)
    assert (hcm["normalize_path"], hcm["merge_slashes"]) == (True, True)
    assert hcm["path_with_escaped_slashes_action"] == "REJECT_REQUEST"
    provider = hcm["http_filters"][0]["typed_config"]["providers"]["cloudflare_access"]
    assert provider["issuer"] == "https://myteam.cloudflareaccess.com"
    assert provider["require_expiration"] is True
    assert provider["from_headers"] == [{"name": "Cf-Access-Jwt-Assertion"}]
    assert "from_cookies" not in provider
