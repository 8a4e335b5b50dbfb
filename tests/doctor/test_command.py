"""``immich-conformance doctor`` as a person runs it: one line per check, JSON for CI, a JUnit report (each check a
pytest test), exit 1 on any fail and 2 when it cannot start, in one line without a traceback."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from immich_conformance import REPO_ROOT
from immich_conformance.cli import main
from immich_conformance.doctor.checks import CHECKS

from ..installed_plugins import DESELECTS_ONE, REVERSES, install
from .fakeroot import FakeRoot

NAS_LINE = "nas.local:/volume1/photos /mnt/nas nfs4 defaults,_netdev 0 0\n"


def doctor(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["doctor", *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_a_prepared_node_has_no_fail_and_every_check_a_verdict(fake: FakeRoot,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = doctor(capsys, "--overlay", "k3s", "--root", str(fake.root), "--json")
    report = json.loads(out)
    assert [r["check"] for r in report["results"]] == [c.id for c in CHECKS]
    verdicts = {r["check"]: r["verdict"] for r in report["results"]}
    assert "fail" not in verdicts.values(), report
    assert verdicts["split-horizon-dns"] == "warn"  # the overlay's example hostname photos.example.com
    assert status == 0 and report["summary"]["fail"] == 0


def test_a_fail_is_one_line_with_its_fix_and_exits_1(fake: FakeRoot, capsys: pytest.CaptureFixture[str]) -> None:
    fake.replace_in("/etc/fstab", NAS_LINE, "")
    status, out, _ = doctor(capsys, "--root", str(fake.root))
    lines = out.splitlines()
    assert status == 1
    assert len(lines) == len(CHECKS) + 1
    assert ("FAIL boot-mount: neither /etc/fstab nor a systemd mount unit mounts /mnt/nas: after a reboot the share is "
            "missing -> fix: add to /etc/fstab: nas.local:/volume1/photos /mnt/nas nfs4 defaults,_netdev 0 0") in lines
    assert lines[-1].endswith("failed (overlays/k3s on local:// under " + str(fake.root) + ")")
    assert "Traceback" not in out


def test_the_junit_report_has_each_check_as_a_test(fake: FakeRoot, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    fake.replace_in("/etc/fstab", NAS_LINE, "")
    junit = tmp_path / "doctor.xml"
    status, _, _ = doctor(capsys, "--root", str(fake.root), "--junitxml", str(junit))
    cases = ET.parse(junit).getroot().iter("testcase")
    by_name = {case.get("name"): case for case in cases}
    assert status == 1
    assert set(by_name) == {f"test_check[{c.id}]" for c in CHECKS}
    failed = [name for name, case in by_name.items() if case.find("failure") is not None]
    assert failed == ["test_check[boot-mount]"]
    properties = {p.get("name"): p.get("value") for p in by_name["test_check[boot-mount]"].iter("property")}
    assert properties["verdict"] == "fail" and properties["fix"].startswith("add to /etc/fstab: ")
    warned = by_name["test_check[split-horizon-dns]"]
    assert warned.find("failure") is None and {p.get("name"): p.get("value") for p in warned.iter("property")}[
        "verdict"] == "warn"


def test_the_html_report_shows_every_check(fake: FakeRoot, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    html = tmp_path / "doctor.html"
    status, _, _ = doctor(capsys, "--root", str(fake.root), "--html", str(html))
    text = html.read_text()
    assert status == 0 and all(f"test_check[{c.id}]" in text for c in CHECKS)


def test_the_docs_list_every_check() -> None:
    table = (REPO_ROOT / "docs" / "doctor.md").read_text()
    assert [c.id for c in CHECKS if f"| `{c.id}` |" not in table] == []


def test_the_callers_pytest_options_do_not_leak_into_the_doctors_run(fake: FakeRoot, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    outer = tmp_path / "outer.xml"
    monkeypatch.setenv("PYTEST_ADDOPTS", f"--junitxml={outer} -x")
    status, out, _ = doctor(capsys, "--root", str(fake.root), "--json")
    assert status == 0 and len(json.loads(out)["results"]) == len(CHECKS)
    assert not outer.exists()


def test_a_plugin_that_reorders_tests_does_not_reorder_the_checks(fake: FakeRoot, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    install("reverses_doctor_checks", REVERSES, tmp_path / "site", monkeypatch)  # as pytest-randomly shuffles
    status, out, _ = doctor(capsys, "--root", str(fake.root), "--json")
    assert status == 0 and [r["check"] for r in json.loads(out)["results"]] == [c.id for c in CHECKS]


def test_a_plugin_that_deselects_a_check_stops_the_doctor_saying_so(fake: FakeRoot, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    install("deselects_a_doctor_check", DESELECTS_ONE, tmp_path / "site", monkeypatch)
    status, out, err = doctor(capsys, "--root", str(fake.root))
    dropped = CHECKS[len(CHECKS) // 2].id
    assert status == 2 and out == "", out
    assert err.strip().splitlines()[-1].endswith(f"1 of the {len(CHECKS)} checks did not run (test_check[{dropped}]): "
                                                 "a pytest plugin installed in this environment deselected them; "
                                                 "uninstall it"), err


@pytest.mark.parametrize(("args", "message"), [
    (["--overlay", "no-such-overlay"], "no overlay 'no-such-overlay'"),
    (["--root", "/nonexistent/fake-root"], "--root /nonexistent/fake-root: no such folder"),
    (["--host", "nosuchscheme://node"], "--host nosuchscheme://node"),
])
def test_a_doctor_that_cannot_start_says_why_in_one_line(capsys: pytest.CaptureFixture[str], args: list[str],
                                                         message: str) -> None:
    status, out, err = doctor(capsys, *args)
    assert status == 2 and out == ""
    assert err.startswith("immich-conformance doctor: ") and message in err and "Traceback" not in err


@pytest.mark.parametrize(("address", "verdict"), [("192.168.1.20", "pass"), ("104.21.7.9", "fail")])
def test_a_hosts_file_given_resolves_the_public_hostname(fake: FakeRoot, tmp_path: Path, address: str, verdict: str,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    hosts = tmp_path / "lan-dns"
    hosts.write_text(f"{address} photos.conformance.test\n")  # the ci overlay's public hostname (edge stand-in)
    fake.hosts("")  # the fake root's own /etc/hosts knows nothing
    status, out, _ = doctor(capsys, "--overlay", "ci", "--root", str(fake.root), "--hosts-file", str(hosts), "--json")
    dns = next(r for r in json.loads(out)["results"] if r["check"] == "split-horizon-dns")
    assert dns["verdict"] == verdict and address in dns["found"], dns
    assert status == (1 if verdict == "fail" else 0)


def test_a_missing_hosts_file_is_said_in_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, out, err = doctor(capsys, "--hosts-file", str(tmp_path / "nope"))
    assert status == 2 and out == "" and err.startswith(f"immich-conformance doctor: --hosts-file {tmp_path / 'nope'}:")
