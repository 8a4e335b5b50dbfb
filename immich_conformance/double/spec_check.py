"""Checking response bodies against Immich's published OpenAPI document.

    spec = load_spec()                                     # the pinned release (versions.IMMICH_VERSION)
    spec.check("GET", "/api/assets/0b6d...", 200, body)     # raises SpecViolation listing every problem
    problems = spec.problems("POST", "/api/assets", 201, body)

Paths may be given as sent on the wire (``/api/assets/<uuid>?key=x``) or as templates (``/assets/{id}``); the
``/api`` prefix (the document's server URL) is optional. Statuses the operation documents are checked against their
JSON schema ($refs resolved from ``components``). Error statuses (4xx/5xx), which Immich's document does not describe,
are checked against the error shape Immich v3 sends: ``{"message": str}`` or ``{"message": "Validation failed",
"errors": [{"code", "path", "message", ...}]}``. A success status the operation does not document is a violation.

``strict=True`` also rejects properties a schema does not declare (the API double is held to this; a real server may
add fields). A ``nullable`` composition (``{"allOf": [$ref], "nullable": true}``) accepts ``null``, as OpenAPI 3.0
means, which the plain OAS 3.0 validator gets wrong.

Where the document is: ``load_spec(path=...)``, else $IMMICH_OPENAPI_SPEC (a file), else ``openapi-<version>.json``
in $IMMICH_OPENAPI_DIR or ``<repo>/specs/immich/``.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from openapi_schema_validator import OAS30Validator, oas30_format_checker

from immich_conformance.versions import IMMICH_VERSION

REPO_ROOT = Path(__file__).resolve().parents[2]
SPEC_DIRS = (REPO_ROOT / "specs" / "immich",)
API_PREFIX = "/api"

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
    responses: Mapping[str, Any]


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
        self._components = _prepare_components(document["components"], strict=strict)
        self._operations: dict[tuple[str, str], Operation] = {}
        self._matchers: list[tuple[re.Pattern[str], str]] = []
        for template, item in document["paths"].items():
            for method, op in item.items():
                if method.lower() not in {"get", "post", "put", "patch", "delete", "head", "options"}:
                    continue
                self._operations[(method.upper(), template)] = Operation(
                    method.upper(), template, op.get("operationId", ""), op.get("responses", {})
                )
            pattern = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$"
            self._matchers.append((re.compile(pattern), template))
        # Literal paths win over templated ones (/assets/statistics before /assets/{id}).
        self._matchers.sort(key=lambda m: (m[1].count("{"), -len(m[1])))

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
        template = self._template_for(path)
        if template is None:
            raise SpecError(f"{self.source} has no path matching {path}")
        op = self._operations.get((method, template))
        if op is None:
            raise SpecError(f"{self.source} has no {method} operation on {template}")
        return op

    def _template_for(self, path: str) -> str | None:
        path = urlsplit(path).path
        if path.startswith(API_PREFIX + "/"):
            path = path[len(API_PREFIX):]
        if path in self.document["paths"]:
            return path
        for pattern, template in self._matchers:
            if pattern.match(path):
                return template
        return None

    def response_schema(self, method: str, path: str, status: int) -> dict[str, Any] | None:
        """The JSON schema of a documented status (None when the status has no body); SpecError if undocumented."""
        op = self.operation(method, path)
        response = op.responses.get(str(status))
        if response is None:
            raise SpecError(f"{op.method} {op.template} does not document status {status}")
        content = response.get("content") or {}
        if not content:
            return None
        media = content.get("application/json")
        if media is None:
            return {}  # not a JSON body (a file download): nothing to check here
        return media.get("schema", {})

    # ---- checking --------------------------------------------------------------------------------------------------

    def problems(self, method: str, path: str, status: int, body: Any, *, has_body: bool = True) -> list[str]:
        """Every way ``body`` (already parsed JSON; ``has_body=False`` for an empty body) breaks the document."""
        op = self.operation(method, path)
        documented = str(status) in op.responses
        if not documented:
            if status >= 400:
                if not has_body:
                    return [f"status {status} came without a body; Immich sends {{\"message\": ...}}"]
                return self._validate(ERROR_BODY_SCHEMA, body)
            return [f"status {status} is not documented for {op.method} {op.template} "
                    f"(documented: {', '.join(sorted(op.responses))})"]
        schema = self.response_schema(method, path, status)
        if schema is None:
            return [] if not has_body else [f"status {status} of {op.method} {op.template} has no body, but one came"]
        if not has_body:
            return [f"status {status} of {op.method} {op.template} must have a JSON body, but it was empty"]
        return self._validate(schema, body)

    def check(self, method: str, path: str, status: int, body: Any, *, has_body: bool = True) -> None:
        found = self.problems(method, path, status, body, has_body=has_body)
        if found:
            raise SpecViolation(f"{method.upper()} {urlsplit(path).path} -> {status}", found)

    def check_response(self, response: Any) -> None:
        """Check an ``httpx.Response`` (its request's method and URL path give the operation)."""
        request = response.request
        raw = response.content
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                raise SpecViolation(f"{request.method} {request.url.path} -> {response.status_code}",
                                    [f"body is not JSON: {raw[:120]!r}"]) from None
        else:
            body = None
        self.check(request.method, request.url.path, response.status_code, body, has_body=bool(raw))

    def _validate(self, schema: Mapping[str, Any], body: Any) -> list[str]:
        root = dict(schema)
        root["components"] = self._components
        validator = OAS30Validator(root, format_checker=oas30_format_checker)
        found = []
        for error in sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path)):
            where = "".join(f"[{p!r}]" for p in error.absolute_path) or "body"
            found.append(f"{where}: {error.message}")
        return found


def _prepare_components(components: Mapping[str, Any], *, strict: bool) -> dict[str, Any]:
    prepared = copy.deepcopy(dict(components))

    def visit(node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in ("properties", "patternProperties") and isinstance(value, dict):
                out[key] = {name: visit(sub) for name, sub in value.items()}
            elif key in ("items", "additionalProperties", "not"):
                out[key] = visit(value)
            elif key in ("allOf", "oneOf", "anyOf") and isinstance(value, list):
                out[key] = [visit(sub) for sub in value]
            else:
                out[key] = value
        if strict and "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        composed = any(key in out for key in ("allOf", "oneOf", "anyOf", "$ref"))
        if out.get("nullable") is True and "type" not in out and composed:
            rest = {key: value for key, value in out.items() if key != "nullable"}
            return {"anyOf": [{"enum": [None]}, rest]}
        return out

    schemas = prepared.get("schemas", {})
    for name, schema in list(schemas.items()):
        schemas[name] = visit(schema)
    return prepared
