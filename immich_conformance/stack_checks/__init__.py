"""Static proof of the Kubernetes stack in stack/: render each overlay and check it without a cluster.

- `rendering`: find the stack, report missing secret files, render an overlay with `kubectl kustomize`.
- `manifests`: an index over the rendered objects (pods, Services, ConfigMaps, Secrets).
- `crossref`: runs the stack's own invariants, which live by concern in `wiring` (selectors, ports, references,
  the server's endpoints), `cloudflared_ingress` and `internet_path` (exposure, the origin proxy), `storage`
  (the NAS mount), `image_pins` and `inline_secrets`; `findings`, `stack_design`, `pod_lookups` and `endpoints`
  hold what they share.
- `origin_proxy_config`: the origin proxy's envoy.yaml as start.sh fills it in (JWT on every route, the body limit).
- `node_ports`, `placeholders`: node ports in the cluster's range; no example value left in a real overlay.
- `redis_password`, `immich_release`: Redis asks for the password the server is given; one Immich release.
- `netpol`: a NetworkPolicy evaluator and the design's traffic matrix.
- `schema`, `checkov_scan`: Kubernetes schema validation and checkov, run on the rendered output.
- `mutations`: seeded mistakes that the checks above must catch.
- `proof`: all of it per overlay (render, schema, our checks, checkov): what `immich-conformance check-stack` runs.
"""

from immich_conformance.stack_checks.crossref import run_crossref_checks
from immich_conformance.stack_checks.findings import Finding
from immich_conformance.stack_checks.immich_release import check_immich_release
from immich_conformance.stack_checks.manifests import Manifests
from immich_conformance.stack_checks.netpol import check_traffic_matrix
from immich_conformance.stack_checks.node_ports import check_node_ports
from immich_conformance.stack_checks.origin_proxy_config import check_origin_proxy_envoy
from immich_conformance.stack_checks.placeholders import check_placeholders
from immich_conformance.stack_checks.pod_security import check_pod_security
from immich_conformance.stack_checks.redis_password import check_redis_password
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
    """Every check of our own on one rendered overlay (no cluster, no external tool): [] when all hold. Placeholders
    are looked for only when the overlay was rendered from its own secret files, not the committed examples."""
    findings = run_crossref_checks(rendered.documents, proxy_files=rendered.proxy_files)
    findings += check_traffic_matrix(rendered.documents, lan_cidr=rendered.settings.get("lanCidr"))
    m = Manifests(rendered.documents)
    findings += check_origin_proxy_envoy(m) + check_node_ports(m) + check_pod_security(m)
    findings += check_redis_password(m) + check_immich_release(m)
    if not rendered.example_secrets:
        findings += check_placeholders(rendered.documents, rendered.placeholders)
    return findings
