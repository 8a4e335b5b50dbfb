"""checkov on the rendered stack: no failed check, and every waiver carries a written reason.

One checkov run scans every overlay plus a deliberately broken copy, which proves the scan is not vacuous.
"""

from __future__ import annotations

import copy

import pytest
import yaml

from immich_conformance.stack_checks import RenderedOverlay
from immich_conformance.stack_checks.checkov_scan import CheckovReport, CheckovUnavailable, run_checkov
from immich_conformance.stack_checks.mutations import container, find

BROKEN = "broken.yaml"


@pytest.fixture(scope="module")
def checkov_reports(rendered_overlays: dict[str, RenderedOverlay]) -> dict[str, CheckovReport]:
    files = {f"{name}.yaml": r.text for name, r in rendered_overlays.items()}
    broken = copy.deepcopy(rendered_overlays["k3s"].documents)
    container(broken, "origin-proxy")["securityContext"]["privileged"] = True
    find(broken, "Deployment", "cloudflared")["metadata"]["annotations"]["checkov.io/skip9"] = "CKV_K8S_8"
    files[BROKEN] = yaml.safe_dump_all(broken, sort_keys=False)
    try:
        return run_checkov(files)
    except CheckovUnavailable as err:
        pytest.fail(str(err))


@pytest.mark.parametrize("overlay", ["k3s", "kind"])
def test_checkov_passes_with_written_waivers_only(overlay: str, checkov_reports: dict[str, CheckovReport]) -> None:
    report = checkov_reports[f"{overlay}.yaml"]
    assert report.passed > 100 and len(report.resources) >= 20, "checkov scanned (almost) nothing"
    findings = report.findings()
    assert not findings, "\n".join(map(str, findings))
    waived = {(r["resource"], r["check_id"]) for r in report.skipped}
    assert waived, "the stack is expected to carry some reasoned waivers"


def test_checkov_catches_a_privileged_container_and_a_bare_waiver(checkov_reports: dict[str, CheckovReport]) -> None:
    findings = [str(f) for f in checkov_reports[BROKEN].findings()]
    assert any("origin-proxy" in f and "CKV_K8S_16" in f for f in findings), findings
    assert any("cloudflared" in f and "CKV_K8S_8 is waived without a written reason" in f for f in findings), findings
