"""Kubernetes schema validation of rendered objects (kubernetes-validate, strict: unknown fields fail)."""

from __future__ import annotations

from typing import Any

from immich_conformance.stack_checks.findings import Finding
from immich_conformance.stack_checks.manifests import ref
from immich_conformance.versions import KUBERNETES_MINOR


def validate_documents(documents: list[dict[str, Any]], version: str = KUBERNETES_MINOR) -> list[Finding]:
    try:
        import kubernetes_validate
    except ImportError as err:  # a dev dependency
        raise RuntimeError("kubernetes-validate is not installed: pip install -e '.[dev]'") from err
    findings = []
    for doc in documents:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as err:
            where = ".".join(str(p) for p in err.path) or "(top)"
            findings.append(Finding("schema", ref(doc), f"{where}: {err.message}"))
        except (kubernetes_validate.SchemaNotFoundError, kubernetes_validate.InvalidSchemaError) as err:
            findings.append(Finding("schema", ref(doc), f"no schema for Kubernetes {version}: {err}"))
    return findings
