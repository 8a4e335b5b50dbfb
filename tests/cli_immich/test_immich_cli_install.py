"""How the CLI's install fails: one line naming the cause, never a traceback from npm."""

from __future__ import annotations

from pathlib import Path

import pytest

from immich_conformance.immich_cli import ImmichCliUnavailable, ensure_immich_cli


def test_missing_npm_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(ImmichCliUnavailable, match=r"^npm is not installed") as caught:
        ensure_immich_cli(tmp_path / "cache")
    assert "\n" not in str(caught.value)


def test_unreachable_registry_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("npm_config_registry", "http://127.0.0.1:9/")  # discard port: nothing listens
    monkeypatch.setenv("npm_config_cache", str(tmp_path / "npm-cache"))  # nothing cached to fall back on
    monkeypatch.setenv("npm_config_fetch_retries", "0")
    with pytest.raises(ImmichCliUnavailable, match=r"^the npm registry cannot be reached") as caught:
        ensure_immich_cli(tmp_path / "cache")
    assert "\n" not in str(caught.value)
