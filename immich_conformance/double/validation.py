"""Request validation with Immich v3's error body: ``{"message": "Validation failed", "errors": [<zod issue>, ...]}``.

Each issue carries ``code``, ``path`` and ``message`` like the zod issues Immich v3 returns (plus zod's detail keys
such as ``expected``, ``format`` or ``values``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

UUID_PATTERN = re.compile(
    r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-4[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12})$"
)
EMAIL_PATTERN = re.compile(
    r"^[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
    r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$"
)
# An ISO 8601 date-time that states its offset (Z or +hh:mm): a local time without one is refused.
DATETIME_WITH_OFFSET = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})$"
)

Path = list[str | int]


class ApiError(Exception):
    """An error response: status and JSON body."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"message": message, **extra}


class ValidationFailed(ApiError):
    def __init__(self, issues: Sequence[dict[str, Any]]) -> None:
        super().__init__(400, "Validation failed", errors=list(issues))


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


class Issues:
    """Collects zod-style issues; ``raise_if_any()`` turns them into a 400."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def invalid_type(self, path: Path, expected: str, value: Any, *, missing: bool = False) -> None:
        received = "undefined" if missing else type_name(value)
        self.items.append({
            "expected": expected, "code": "invalid_type", "path": path,
            "message": f"Invalid input: expected {expected}, received {received}",
        })

    def invalid_format(self, path: Path, fmt: str, message: str, pattern: re.Pattern[str] | None = None) -> None:
        issue: dict[str, Any] = {"origin": "string", "code": "invalid_format", "format": fmt}
        if pattern is not None:
            issue["pattern"] = pattern.pattern
        issue.update({"path": path, "message": message})
        self.items.append(issue)

    def invalid_value(self, path: Path, values: Iterable[str]) -> None:
        options = list(values)
        listed = "|".join(f'"{v}"' for v in options)
        self.items.append({"code": "invalid_value", "values": options, "path": path,
                           "message": f"Invalid option: expected one of {listed}"})

    def too_small(self, path: Path, minimum: int, origin: str = "array") -> None:
        unit = "items" if origin == "array" else "characters"
        self.items.append({"origin": origin, "code": "too_small", "minimum": minimum, "inclusive": True, "path": path,
                           "message": f"Too small: expected {origin} to have >={minimum} {unit}"})

    def custom(self, path: Path, message: str) -> None:
        self.items.append({"code": "custom", "path": path, "message": message})

    def raise_if_any(self) -> None:
        if self.items:
            raise ValidationFailed(self.items)


def is_uuid(value: Any) -> bool:
    return isinstance(value, str) and bool(UUID_PATTERN.match(value))


def parse_datetime(value: str) -> datetime | None:
    """An aware datetime for an ISO 8601 string with an offset, else None."""
    if not DATETIME_WITH_OFFSET.match(value):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


class Reader:
    """Reads fields of a request body (a JSON object, or multipart form fields as strings) and records issues."""

    def __init__(self, body: Any, issues: Issues | None = None, *, form: bool = False) -> None:
        self.issues = issues or Issues()
        self.form = form
        if not isinstance(body, dict):
            self.issues.invalid_type([], "object", body)
            body = {}
        self.body: dict[str, Any] = body

    def array(self, key: str) -> list[Any] | None:
        """The array at ``key``; None (the issue recorded) when it is missing or not an array."""
        value = self.body.get(key)
        if not isinstance(value, list):
            self.issues.invalid_type([key], "array", value, missing=key not in self.body)
            return None
        return value

    def string(self, key: str, *, required: bool = True, fmt: str | None = None) -> str | None:
        if key not in self.body or (self.body[key] is None and not required):
            if required:
                self.issues.invalid_type([key], "string", None, missing=True)
            return None
        value = self.body[key]
        if not isinstance(value, str):
            self.issues.invalid_type([key], "string", value)
            return None
        if fmt == "uuid" and not UUID_PATTERN.match(value):
            self.issues.invalid_format([key], "uuid", "Invalid UUID", UUID_PATTERN)
            return None
        if fmt == "email" and not EMAIL_PATTERN.match(value):
            self.issues.invalid_format([key], "email", "Invalid email address", EMAIL_PATTERN)
            return None
        return value

    def datetime(self, key: str, *, required: bool = True) -> datetime | None:
        value = self.string(key, required=required)
        if value is None:
            return None
        parsed = parse_datetime(value)
        if parsed is None:
            self.issues.invalid_format([key], "datetime", "Invalid ISO datetime")
        return parsed

    def boolean(self, key: str) -> bool | None:
        if key not in self.body:
            return None
        value = self.body[key]
        if self.form and isinstance(value, str) and value in {"true", "false"}:
            return value == "true"
        if isinstance(value, bool):
            return value
        self.issues.invalid_type([key], "boolean", value)
        return None

    def integer(self, key: str, *, minimum: int | None = None) -> int | None:
        if key not in self.body or (self.form and self.body[key] == ""):
            return None
        value = self.body[key]
        if self.form and isinstance(value, str) and re.fullmatch(r"-?\d+", value):
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            self.issues.invalid_type([key], "int" if isinstance(value, float) else "number", value)
            return None
        if minimum is not None and value < minimum:
            self.issues.items.append({"origin": "number", "code": "too_small", "minimum": minimum, "inclusive": True,
                                      "path": [key], "message": f"Too small: expected number to be >={minimum}"})
            return None
        return value

    def choice(self, key: str, options: Sequence[str]) -> str | None:
        if key not in self.body:
            return None
        value = self.body[key]
        if value not in options:
            self.issues.invalid_value([key], options)
            return None
        return str(value)
