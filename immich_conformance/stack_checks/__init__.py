"""Static proof of the Kubernetes stack in stack/: render each overlay and check it without a cluster.

- `rendering`: find the stack, report missing secret files, render an overlay with `kubectl kustomize`.
- `manifests`: an index over the rendered objects (pods, Services, ConfigMaps, Secrets).
- `crossref`: the stack's own invariants (selectors, ports, references, the NAS mount, exposure, images).
- `netpol`: a NetworkPolicy evaluator and the design's traffic matrix.
- `schema`, `checkov_scan`: Kubernetes schema validation and checkov, run on the rendered output.
- `mutations`: seeded mistakes that the checks above must catch.
"""

from immich_conformance.stack_checks.crossref import Finding, run_crossref_checks
from immich_conformance.stack_checks.netpol import check_traffic_matrix
from immich_conformance.stack_checks.rendering import (
    RenderedOverlay,
    StackConfigError,
    find_stack_dir,
    missing_secret_files,
    overlay_names,
    render_overlay,
)

__all__ = [
    "Finding",
    "RenderedOverlay",
    "StackConfigError",
    "check_traffic_matrix",
    "find_stack_dir",
    "missing_secret_files",
    "overlay_names",
    "render_overlay",
    "run_crossref_checks",
    "run_static_checks",
]


def run_static_checks(rendered: RenderedOverlay) -> list[Finding]:
    """Every check of our own on one rendered overlay (no cluster, no external tool): [] when all hold."""
    findings = run_crossref_checks(rendered.documents, proxy_files=rendered.proxy_files)
    findings += check_traffic_matrix(rendered.documents, lan_cidr=rendered.settings.get("lanCidr"))
    return findings
