"""Checking response bodies against Immich's published OpenAPI document, with openapi-core.

    spec = load_spec()                                     # the pinned release (versions.IMMICH_VERSION)
    spec.check("GET", "/api/assets/0b6d...", 200, body)     # raises SpecViolation listing every problem
    problems = spec.problems("POST", "/api/assets", 201, body)

Paths may be given as sent on the wire (``/api/assets/<uuid>?key=x``) or as templates (``/assets/{id}``); the
``/api`` prefix (the document's server URL) is optional; a literal path without the method falls through to the
templated one, as Immich's router does (PATCH /shared-links/me is PATCH /shared-links/{id}). openapi-core finds the
operation and the documented status and validates the JSON body against its schema. A success status the operation
does not document is a violation.

Kept by hand, because the document does not say it or openapi-core does not check it:
- Immich's document describes almost no error answers; Immich v3 sends ``{"message": str}`` or ``{"message": "Validation
  failed", "errors": [{"code", "path", "message", ...}]}``, so that shape is added to every operation as its 4XX and
  5XX responses before openapi-core reads the document.
- A ``nullable`` composition (``{"allOf": [$ref], "nullable": true}``) accepts ``null``, as OpenAPI 3.0 means; the OAS
  3.0 validator under openapi-core rejects it, so such schemas are rewritten as ``anyOf: [null, ...]``.
- openapi-core ignores a body on a status documented without content (204), and this module does not check non-JSON
  bodies (an original's bytes): both are decided here from the document.

``strict=True`` also rejects properties a schema does not declare (openapi-core's ``additional_properties_default_policy
="forbid"``; the API double is held to this; a real server may add fields).

Where the document is: ``load_spec(path=...)``, else $IMMICH_OPENAPI_SPEC (a file), else ``openapi-<version>.json``
in $IMMICH_OPENAPI_DIR or ``<repo>/specs/immich/``.
"""

from __future__ import annotations

import copy
import functools
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from openapi_core import Config, OpenAPI
from openapi_core.templating.paths.exceptions import OperationNotFound, PathError
from openapi_core.templating.paths.finders import APICallPathFinder
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_core.templating.responses.finders import ResponseFinder
from openapi_core.testing import MockRequest, MockResponse

from immich_conformance.versions import IMMICH_VERSION

REPO_ROOT = Path(__file__).resolve().parents[2]
SPEC_DIRS = (REPO_ROOT / "specs" / "immich",)
API_PREFIX = "/api"
HOST_URL = "http://immich.invalid"
METHODS = frozenset({"get", "post", "put", "patch", "delete", "head", "options"})
ERROR_SCHEMA_NAME = "ImmichV3ErrorBody"

ERROR_BODY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["message"],
    "additionalProperties": False,
    "properties": {
        "message": {"type": "string", "minLength": 1},
        "errors": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["code", "path", "message"],
                "additionalProperties": True,
                "properties": {
                    "code": {"type": "string", "minLength": 1},
                    "path": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
                    "message": {"type": "string", "minLength": 1},
                },
            },
        },
    },
}


class SpecError(RuntimeError):
    """The OpenAPI document is missing, unreadable, or does not describe the request asked about."""


class SpecViolation(AssertionError):
    """A response does not match what the OpenAPI document (or Immich's error shape) says."""

    def __init__(self, where: str, problems: list[str]) -> None:
        self.where = where
        self.problems = problems
        listed = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{where} does not match the Immich OpenAPI document:\n{listed}")


@dataclass(frozen=True)
class Operation:
    method: str
    template: str  # as in the document, without /api: "/assets/{id}"
    operation_id: str
    responses: Mapping[str, Any]  # as the document has them (without the added error responses)


def find_spec_file(version: str = IMMICH_VERSION) -> Path:
    explicit = os.environ.get("IMMICH_OPENAPI_SPEC")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise SpecError(f"IMMICH_OPENAPI_SPEC={explicit} is not a file")
        return path
    name = f"openapi-{version}.json"
    dirs = [Path(d) for d in [os.environ.get("IMMICH_OPENAPI_DIR")] if d] + list(SPEC_DIRS)
    for folder in dirs:
        if (folder / name).is_file():
            return folder / name
    searched = ", ".join(str(d) for d in dirs)
    raise SpecError(
        f"no {name} in {searched}: set IMMICH_OPENAPI_SPEC to Immich's OpenAPI document for {version} "
        "(open-api/immich-openapi-specs.json in the Immich repository at that tag)"
    )


@functools.lru_cache(maxsize=8)
def load_spec(version: str = IMMICH_VERSION, path: str | None = None, strict: bool = False) -> OpenApiSpec:
    """The OpenAPI document for ``version`` (cached)."""
    return OpenApiSpec.from_file(Path(path) if path else find_spec_file(version), strict=strict)


class OpenApiSpec:
    def __init__(self, document: Mapping[str, Any], *, strict: bool = False, source: str = "<document>") -> None:
        if "paths" not in document or "components" not in document:
            raise SpecError(f"{source} is not an OpenAPI document (no paths/components)")
        self.document = document
        self.source = source
        self.strict = strict
        self.version = str(document.get("info", {}).get("version", ""))
        config = Config(spec_validator_cls=None, additional_properties_default_policy="forbid" if strict else "allow")
        self._api = OpenAPI.from_dict(_prepare_document(document), config=config)
        self._paths = APICallPathFinder(self._api.spec)

    @classmethod
    def from_file(cls, path: Path, *, strict: bool = False) -> OpenApiSpec:
        try:
            document = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise SpecError(f"cannot read the OpenAPI document {path}: {exc}") from None
        return cls(document, strict=strict, source=str(path))

    # ---- lookup ----------------------------------------------------------------------------------------------------

    def operation(self, method: str, path: str) -> Operation:
        """The operation for ``method`` and a wire path or template (with or without ``/api``)."""
        method = method.upper()
        wire = urlsplit(path).path
        if not wire.startswith(API_PREFIX + "/"):
            wire = API_PREFIX + wire
        try:
            found = self._paths.find(method.lower(), HOST_URL + wire)
        except OperationNotFound:
            raise SpecError(f"{self.source} has no {method} operation on {wire}") from None
        except PathError:
            raise SpecError(f"{self.source} has no path matching {path}") from None
        template = found.path.parts[-1]
        op = self.document["paths"][template][method.lower()]
        return Operation(method, template, op.get("operationId", ""), op.get("responses", {}))

    # ---- checking --------------------------------------------------------------------------------------------------

    def problems(self, method: str, path: str, status: int, body: Any, *, has_body: bool = True) -> list[str]:
        """Every way ``body`` (already parsed JSON; ``has_body=False`` for an empty body) breaks the document."""
        op = self.operation(method, path)
        media = self._media_types(op, status)
        if media is None:
            return [f"status {status} is not documented for {op.method} {op.template} "
                    f"(documented: {', '.join(sorted(op.responses))})"]
        if not media:
            return [] if not has_body else [f"status {status} of {op.method} {op.template} has no body, but one came"]
        if "application/json" not in media:
            return []  # not a JSON body (an original's bytes): not checked here
        if not has_body:
            if str(status) not in op.responses:
                return [f"status {status} came without a body; Immich sends {{\"message\": ...}}"]
            return [f"status {status} of {op.method} {op.template} must have a JSON body, but it was empty"]
        request = MockRequest(HOST_URL, op.method, API_PREFIX + op.template, path_pattern=API_PREFIX + op.template)
        response = MockResponse(json.dumps(body).encode(), status_code=status, content_type="application/json")
        return [line for error in self._api.iter_response_errors(request, response) for line in _describe(error)]

    def check(self, method: str, path: str, status: int, body: Any, *, has_body: bool = True) -> None:
        found = self.problems(method, path, status, body, has_body=has_body)
        if found:
            raise SpecViolation(f"{method.upper()} {urlsplit(path).path} -> {status}", found)

    def check_response(self, response: Any) -> None:
        """Check an ``httpx.Response`` (its request's method and URL path give the operation)."""
        request, status, raw = response.request, response.status_code, response.content
        method, path = request.method, request.url.path
        media = self._media_types(self.operation(method, path), status) or ["application/json"]
        body = None
        if raw and "application/json" in media:
            try:
                body = json.loads(raw)
            except ValueError:
                raise SpecViolation(f"{method} {path} -> {status}", [f"body is not JSON: {raw[:120]!r}"]) from None
        self.check(method, path, status, body, has_body=bool(raw))

    def _media_types(self, op: Operation, status: int) -> list[str] | None:
        """The media types documented for ``status`` (4XX/5XX: Immich's error body); None when it is undocumented."""
        responses = self._api.spec / "paths" / op.template / op.method.lower() / "responses"
        try:
            found = ResponseFinder(responses).find(str(status))
        except ResponseNotFound:
            return None
        return list((found / "content").keys()) if "content" in found else []


def _describe(error: Exception) -> list[str]:
    """One line per schema error (``['field']: message``), or openapi-core's own message."""
    schema_errors = getattr(error.__cause__, "schema_errors", None)
    if not schema_errors:
        return [str(error)]
    lines = []
    for found in sorted(schema_errors, key=lambda e: [str(p) for p in e.absolute_path]):
        where = "".join(f"[{p!r}]" for p in found.absolute_path) or "body"
        lines.append(f"{where}: {found.message}")
    return lines


def _prepare_document(document: Mapping[str, Any]) -> dict[str, Any]:
    """A copy with nullable compositions made explicit and Immich's error shape as every operation's 4XX/5XX."""
    prepared = copy.deepcopy(dict(document))
    schemas = prepared["components"].setdefault("schemas", {})
    for name, schema in list(schemas.items()):
        schemas[name] = _nullable_compositions(schema)
    schemas[ERROR_SCHEMA_NAME] = ERROR_BODY_SCHEMA
    error = {"description": "Immich v3's error body", "content": {
        "application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_SCHEMA_NAME}"}}}}
    for item in prepared["paths"].values():
        for method, op in item.items():
            if method.lower() in METHODS:
                responses = op.setdefault("responses", {})
                responses.setdefault("4XX", error)
                responses.setdefault("5XX", error)
    return prepared


def _nullable_compositions(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("properties", "patternProperties") and isinstance(value, dict):
            out[key] = {name: _nullable_compositions(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            out[key] = _nullable_compositions(value)
        elif key in ("allOf", "oneOf", "anyOf") and isinstance(value, list):
            out[key] = [_nullable_compositions(sub) for sub in value]
        else:
            out[key] = value
    composed = any(key in out for key in ("allOf", "oneOf", "anyOf", "$ref"))
    if out.get("nullable") is True and "type" not in out and composed:
        rest = {key: value for key, value in out.items() if key != "nullable"}
        return {"anyOf": [{"enum": [None]}, rest]}
    return out
