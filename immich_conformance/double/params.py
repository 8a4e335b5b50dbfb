"""Reading path ids, id lists and query flags the way Immich's validation does (its 400 ``Validation failed``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from immich_conformance.double.validation import Issues, Reader, is_uuid


def path_uuid(request: web.Request, name: str = "id") -> str:
    reader = Reader({name: request.match_info[name]})
    value = reader.string(name, fmt="uuid")
    reader.issues.raise_if_any()
    assert value is not None
    return value


def uuid_list(reader: Reader, key: str, *, required: bool = True, min_items: int = 0) -> list[str]:
    if key not in reader.body and not required:
        return []
    value = reader.array(key)
    if value is None:
        return []
    if len(value) < min_items:
        reader.issues.too_small([key], min_items)
    for index, item in enumerate(value):
        if not isinstance(item, str):
            reader.issues.invalid_type([key, index], "string", item)
        elif not is_uuid(item):
            reader.issues.invalid_format([key, index], "uuid", "Invalid UUID")
    return [str(item) for item in value if is_uuid(item)]


def query_flags(query: Mapping[str, str], *names: str) -> dict[str, bool | None]:
    """Optional boolean query parameters ("true"/"false"); anything else is a validation failure."""
    issues = Issues()
    flags: dict[str, bool | None] = {}
    for name in names:
        value = query.get(name)
        if value is None:
            flags[name] = None
        elif value in ("true", "false"):
            flags[name] = value == "true"
        else:
            issues.invalid_value([name], ["true", "false"])
    issues.raise_if_any()
    return flags


def optional_text(reader: Reader, key: str, *, nullable: bool = False) -> Any:
    """A string that may be absent (and ``null`` when ``nullable``); the value, or None."""
    if key not in reader.body or (nullable and reader.body[key] is None):
        return None
    return reader.string(key)
