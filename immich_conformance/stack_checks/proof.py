"""The whole static proof of the stack, as `immich-conformance check-stack` and the tests run it.

Each overlay is rendered, validated against the Kubernetes schemas, checked by our own checks
(`run_static_checks`), and scanned by checkov (one run for all overlays). The result per overlay is either the
error that stopped its rendering (one line, in the stack's terms) or its findings; [] findings means it holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from immich_conformance.stack_checks import run_static_checks
from immich_conformance.stack_checks.checkov_scan import CheckovUnavailable, scan_rendered
from immich_conformance.stack_checks.findings import Finding
from immich_conformance.stack_checks.rendering import (
    RenderedOverlay,
    StackConfigError,
    find_stack_dir,
    overlay_names,
    render_overlay,
)
from immich_conformance.stack_checks.schema import validate_documents


@dataclass
class OverlayProof:
    overlay: str
    rendered: RenderedOverlay | None = None
    error: str | None = None  # why it could not be rendered
    findings: list[Finding] = field(default_factory=list)

    @property
    def holds(self) -> bool:
        return self.error is None and not self.findings


def stack_dir_at(path: Path) -> Path:
    """`path` as the stack to check: a folder with base/kustomization.yaml."""
    if not (path / "base" / "kustomization.yaml").is_file():
        raise StackConfigError(f"{path} is not a stack: it has no base/kustomization.yaml")
    return path.resolve()


def checkov_findings(rendered: dict[str, RenderedOverlay]) -> dict[str, list[Finding]]:
    """checkov's findings per overlay (one run); checkov missing is a finding for each overlay."""
    if not rendered:
        return {}
    try:
        reports = scan_rendered({name: r.text for name, r in rendered.items()})
    except CheckovUnavailable as exc:
        return {name: [Finding("checkov", name, f"checkov did not run: {exc}")] for name in rendered}
    return {name: report.findings() for name, report in reports.items()}


def prove_stack(overlays: Sequence[str] | None = None, stack_dir: Path | None = None, *,
                example_secrets: bool = False, checkov: bool = True) -> list[OverlayProof]:
    """Render and check each overlay (default: every overlay for a node) of the stack (default: this checkout's)."""
    stack_dir = stack_dir_at(stack_dir) if stack_dir is not None else find_stack_dir()
    proofs = []
    for overlay in overlays or overlay_names(stack_dir):
        try:
            rendered = render_overlay(overlay, stack_dir, with_example_secrets=example_secrets)
        except StackConfigError as exc:
            proofs.append(OverlayProof(overlay, error=str(exc)))
            continue
        findings = validate_documents(rendered.documents) + run_static_checks(rendered)
        proofs.append(OverlayProof(overlay, rendered, findings=findings))
    if checkov:
        scanned = checkov_findings({p.overlay: p.rendered for p in proofs if p.rendered is not None})
        for proof in proofs:
            proof.findings += scanned.get(proof.overlay, [])
    return proofs
