"""Secrets stay in Secrets: no password, token or key written into a manifest or taken from a ConfigMap."""

from __future__ import annotations

import re

from immich_conformance.stack_checks.findings import Finding
from immich_conformance.stack_checks.manifests import Manifests
from immich_conformance.stack_checks.pod_lookups import effective_env

SECRET_NAME_PATTERN = re.compile(r"PASSWORD|TOKEN|SECRET|PRIVATE_KEY", re.IGNORECASE)


def check_secrets_not_inline(m: Manifests) -> list[Finding]:
    findings = []
    for pod in m.pod_templates():
        for container in pod.containers():
            env = effective_env(m, pod, container)
            for var in container.get("env") or []:
                if SECRET_NAME_PATTERN.search(str(var.get("name"))) and "value" in var:
                    findings.append(Finding("secrets-not-inline", pod.name, f"{var.get('name')} is written in the "
                                                                            f"manifest; take it from a Secret"))
            for name, value in env.items():
                literal = any(v.get("name") == name and "value" in v for v in container.get("env") or [])
                if SECRET_NAME_PATTERN.search(name) and value is not None and not literal:
                    findings.append(Finding("secrets-not-inline", pod.name, f"{name} comes from a ConfigMap; take "
                                                                            f"it from a Secret"))
    return findings
