"""The one way in: a target described by a TargetSpec and opened by open_target, whoever asks (pytest, the load
test, the rehearsal, the commands); and the secrets read under one set of names."""

from __future__ import annotations

from pathlib import Path

import pytest

from immich_conformance.targets import credentials
from immich_conformance.targets.credentials import API_KEY_ENV, secret, secrets_environment
from immich_conformance.targets.sandbox import Sandbox
from immich_conformance.targets.spec import TargetSetupError, TargetSpec, TargetSpecError, open_target


@pytest.mark.parametrize(("spec", "message"), [
    (TargetSpec(target="nowhere"), "--target 'nowhere' is not a target"),
    (TargetSpec(runtime="vm"), "--runtime 'vm'"),
    (TargetSpec(images="latest"), "--images 'latest'"),
    (TargetSpec(target="cluster"), "--target cluster needs a cluster"),
    (TargetSpec(target="live"), "--target live needs its settings"),
    (TargetSpec(deployed=True), "--deployed tests a stack that is already up"),
    (TargetSpec(runtime="containers", sandbox_nas=Path("/mnt/nas")), "--sandbox-nas is the processes sandbox's"),
], ids=["target", "runtime", "images", "cluster", "live", "deployed", "nas"])
def test_options_that_describe_no_target_are_refused_before_anything_starts(spec: TargetSpec, message: str) -> None:
    with pytest.raises(TargetSpecError, match=message.replace("(", r"\(")):
        open_target(spec)


def test_a_setup_failure_is_one_line_naming_the_option(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("not a folder")
    with pytest.raises(TargetSetupError, match=r"^sandbox: the sandbox folder .* is a file, not a folder"):
        open_target(TargetSpec(workdir=a_file))


def test_the_sandbox_opens_started_and_closes(tmp_path: Path) -> None:
    target = open_target(TargetSpec(workdir=tmp_path / "work"))
    try:
        assert isinstance(target, Sandbox) and target.api_key
    finally:
        target.close()
    assert not (tmp_path / "work").exists()


def test_secrets_have_one_name_each_and_the_old_names_still_work(capsys: pytest.CaptureFixture[str],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(credentials, "_warned", set())  # said once per process
    assert secret(API_KEY_ENV, {"IMMICH_API_KEY": " key "}) == "key"
    assert secret(API_KEY_ENV, {"IMMICH_CONFORMANCE_API_KEY": "old"}) == "old"
    assert "IMMICH_CONFORMANCE_API_KEY is deprecated" in capsys.readouterr().err
    assert secret(API_KEY_ENV, {}) == ""
    handed = secrets_environment("k", ("id", "s"))
    assert handed["IMMICH_API_KEY"] == "k" and handed["CF_ACCESS_CLIENT_ID"] == "id"
    assert handed["IMMICH_CONFORMANCE_API_KEY"] == "", "an old name never shadows what is handed over"
