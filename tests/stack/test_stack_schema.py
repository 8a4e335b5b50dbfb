"""The rendered stack is valid for the Kubernetes release the suite targets (strict: unknown fields fail)."""

from __future__ import annotations

import copy

from immich_conformance.stack_checks import RenderedOverlay
from immich_conformance.stack_checks.mutations import container, find
from immich_conformance.stack_checks.schema import validate_documents
from immich_conformance.versions import KUBERNETES_MINOR


def test_rendered_stack_matches_the_kubernetes_schemas(rendered: RenderedOverlay) -> None:
    findings = validate_documents(rendered.documents, KUBERNETES_MINOR)
    assert not findings, "\n".join(map(str, findings))


def test_schema_validation_rejects_unknown_fields_and_wrong_types(
        rendered_overlays: dict[str, RenderedOverlay]) -> None:
    documents = copy.deepcopy(rendered_overlays["k3s"].documents)
    container(documents, "immich-server")["imagePullPolcy"] = "Always"
    find(documents, "Service", "immich-server")["spec"]["ports"][0]["nodePort"] = "30283"
    findings = validate_documents(documents, KUBERNETES_MINOR)
    assert {f.subject for f in findings} == {"Deployment/immich-server", "Service/immich-server"}
