"""One run writes JUnit XML, cucumber JSON and HTML; a failed scenario carries its components' logs in each."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from immich_conformance import REPO_ROOT

FEATURE = """\
Feature: Report plumbing
  Scenario: A scenario that passes
    When a device on the LAN pings the server
    Then the server answers "pong"

  Scenario: A scenario that fails
    When a device on the LAN pings the server
    Then the server answers "not-pong"
"""

CONFTEST = """\
pytest_plugins = ["immich_conformance.pytest_plugin", "steps.context", "steps.lan_steps"]
"""


@pytest.mark.slow
def test_failed_scenario_reports_carry_component_logs(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    pytester.makeconftest(CONFTEST)
    pytester.makefile(".feature", plumbing=FEATURE)
    pytester.makepyfile(test_plumbing='from pytest_bdd import scenarios\nscenarios("plumbing.feature")\n')
    pytester.makeini("[pytest]\njunit_logging = system-out\njunit_log_passing_tests = false\n")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--junitxml=junit.xml", "--cucumberjson=cucumber.json",
        "--html=report.html", "--self-contained-html",
    )
    result.assert_outcomes(passed=1, failed=1)

    cases = {c.get("name"): c for c in ET.parse(pytester.path / "junit.xml").getroot().iter("testcase")}
    failed = cases["test_a_scenario_that_fails"]
    assert failed.find("failure") is not None
    out = failed.findtext("system-out") or ""
    assert "immich-server log" in out and "GET /api/server/ping" in out, out[:2000]
    assert "\x1b" not in out and "#x1B" not in out, "Immich's colours in the report: " + out[:2000]
    assert cases["test_a_scenario_that_passes"].find("failure") is None

    cucumber = json.loads((pytester.path / "cucumber.json").read_text())
    statuses = {e["name"]: {s["result"]["status"] for s in e["steps"]} for f in cucumber for e in f["elements"]}
    assert statuses["A scenario that passes"] == {"passed"}
    assert "failed" in statuses["A scenario that fails"]

    html = (pytester.path / "report.html").read_text()
    assert "immich-server log" in html
