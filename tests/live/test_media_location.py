"""The live target checks media_location before any scenario: one small photo of its own shows where the server
stores its files; a setting that does not hold them stops the run naming it, and the photo is gone either way."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from immich_conformance.ledger import Ledger
from immich_conformance.procs import wait_until
from immich_conformance.targets.live import LiveSettings, LiveSettingsError, LiveTarget
from immich_conformance.targets.sandbox import Sandbox

from .test_live_target import secrets


@pytest.fixture(scope="module")
def deployment() -> Iterator[Sandbox]:
    with Sandbox() as sandbox:
        yield sandbox


def live(deployment: Sandbox, media_location: str) -> LiveTarget:
    settings = LiveSettings(lan_url=deployment.lan.url, public_url=f"http://{deployment.public_hostname}",
                            nas_path=deployment.nas_root, media_location=media_location)
    return LiveTarget(settings, env=secrets(deployment))


def assert_nothing_left(deployment: Sandbox) -> None:
    wait_until(lambda: not deployment.nas_upload_files(), timeout=30, what="the check's photo gone from the NAS")
    ledger = Ledger(Ledger.default_path(deployment.lan.url), deployment.lan.url)
    assert ledger.leftovers() == [], "the check's photo is still owed a deletion in the ledger"


def test_a_media_location_the_server_does_not_use_stops_the_run_before_any_scenario(
        deployment: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(LiveSettingsError) as raised:
        live(deployment, "/photos").start()
    message = str(raised.value)
    assert message.startswith("media_location='/photos' is not where Immich at "), message
    assert message.endswith(f"its IMMICH_MEDIA_LOCATION is {deployment.nas}: set media_location: {deployment.nas} "
                            "in the live settings"), message
    assert "\n" not in message
    assert_nothing_left(deployment)


def test_the_servers_own_media_location_passes_and_leaves_nothing(deployment: Sandbox, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    target = live(deployment, str(deployment.media_location)).start()
    target.close()
    assert_nothing_left(deployment)
    assert not Ledger.default_path(deployment.lan.url).exists(), "a settled ledger was left on disk"
