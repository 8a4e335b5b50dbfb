"""Cross-reference checks on the rendered stack: what schema validation and checkov cannot see.

Each check takes the rendered objects and returns findings (an empty list when it holds). They know the
stack's design: the Immich server is the only thing reachable from outside the cluster (its NodePort, for
the LAN), the internet comes in only through cloudflared and the origin proxy, and the photo library is
the NAS, given to the server by a hostPath of type Directory at /data.

This module runs them all, in a fixed order; the checks live by concern in `wiring` (selectors, ports,
references, the server's endpoints), `cloudflared_ingress` and `internet_path` (the way in from the internet),
`storage` (the NAS library), `image_pins` and `inline_secrets`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from immich_conformance.stack_checks.cloudflared_ingress import check_cloudflared_ingress
from immich_conformance.stack_checks.findings import Finding
from immich_conformance.stack_checks.image_pins import check_images
from immich_conformance.stack_checks.inline_secrets import check_secrets_not_inline
from immich_conformance.stack_checks.internet_path import check_exposure, check_proxy_config
from immich_conformance.stack_checks.manifests import Manifests
from immich_conformance.stack_checks.storage import (
    check_hostpath_types,
    check_library_read_only,
    check_mount_guard,
    check_nas_library,
)
from immich_conformance.stack_checks.wiring import (
    check_config_references,
    check_probe_ports,
    check_server_endpoints,
    check_service_selectors,
    check_service_target_ports,
)

CHECKS: dict[str, Callable[[Manifests], list[Finding]]] = {
    "service-selectors": check_service_selectors,
    "service-target-ports": check_service_target_ports,
    "config-references": check_config_references,
    "probe-ports": check_probe_ports,
    "cloudflared-ingress": check_cloudflared_ingress,
    "exposure": check_exposure,
    "nas-library": check_nas_library,
    "mount-guard": check_mount_guard,
    "hostpath-types": check_hostpath_types,
    "library-read-only": check_library_read_only,
    "server-endpoints": check_server_endpoints,
    "images-pinned": check_images,
    "secrets-not-inline": check_secrets_not_inline,
}


def run_crossref_checks(documents: list[dict[str, Any]], proxy_files: dict[str, str] | None = None) -> list[Finding]:
    m = Manifests(documents)
    findings: list[Finding] = []
    for check in CHECKS.values():
        findings += check(m)
    findings += check_proxy_config(m, proxy_files)
    return findings
