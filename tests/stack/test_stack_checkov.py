"""checkov on the rendered stack: no failed check, every waiver carries a written reason, and the scan covers the
rendered workloads and Services (a scan of nothing is a failure, not a pass).

One checkov run, through the same function `immich-conformance check-stack` uses, scans every overlay plus a
deliberately broken copy, which proves the scan is not vacuous.
"""

from __future__ import annotations

import copy

import pytest
import yaml

from immich_conformance.stack_checks import RenderedOverlay
from immich_conformance.stack_checks.checkov_scan import CheckovReport, CheckovUnavailable, scan_rendered
from immich_conformance.stack_checks.mutations import container, find

BROKEN = "broken"


@pytest.fixture(scope="module")
def checkov_reports(rendered_overlays: dict[str, RenderedOverlay]) -> dict[str, CheckovReport]:
    texts = {name: r.text for name, r in rendered_overlays.items()}  # named as the command names them: no .yaml
    broken = copy.deepcopy(rendered_overlays["k3s"].documents)
    container(broken, "origin-proxy")["securityContext"]["privileged"] = True
    find(broken, "Deployment", "cloudflared")["metadata"]["annotations"]["checkov.io/skip9"] = "CKV_K8S_8"
    texts[BROKEN] = yaml.safe_dump_all(broken, sort_keys=False)
    try:
        return scan_rendered(texts)
    except CheckovUnavailable as err:
        pytest.fail(str(err))


@pytest.mark.parametrize("overlay", ["k3s", "kind"])
def test_checkov_passes_with_written_waivers_only(overlay: str, checkov_reports: dict[str, CheckovReport]) -> None:
    report = checkov_reports[overlay]
    assert report.passed > 100 and len(report.resources) >= 20, "checkov scanned (almost) nothing"
    assert report.expected and report.expected <= report.resources
    findings = report.findings()
    assert not findings, "\n".join(map(str, findings))
    waived = {(r["resource"], r["check_id"]) for r in report.skipped}
    assert waived, "the stack is expected to carry some reasoned waivers"


def test_checkov_catches_a_privileged_container_and_a_bare_waiver(checkov_reports: dict[str, CheckovReport]) -> None:
    findings = [str(f) for f in checkov_reports[BROKEN].findings()]
    assert any("origin-proxy" in f and "CKV_K8S_16" in f for f in findings), findings
    assert any("cloudflared" in f and "CKV_K8S_8 is waived without a written reason" in f for f in findings), findings


def test_a_scan_that_covered_nothing_or_too_little_is_a_finding(checkov_reports: dict[str, CheckovReport]) -> None:
    scanned = checkov_reports["k3s"]
    empty = CheckovReport("k3s", expected=set(scanned.expected))
    assert [f.message for f in empty.findings()] == [
        f"checkov scanned no resource (of {len(scanned.expected)} expected): the scan proves nothing"]
    partial = CheckovReport("k3s", passed=scanned.passed, expected=set(scanned.expected),
                            resources=scanned.resources - {"Deployment.immich.cloudflared"})
    assert [f.message for f in partial.findings()] == ["checkov did not scan Deployment.immich.cloudflared"]
