"""Who is calling: Immich's order of credentials and its 401/403 messages.

A session token (``x-immich-user-token``, ``x-immich-session-token``, ``?sessionKey=``, ``Authorization: Bearer``, or
the ``immich_access_token`` cookie) is looked at first and must be a login token: an API key sent that way is
"Invalid user token". Otherwise an API key (``x-api-key`` or ``?apiKey=``). Shared-link keys (``x-immich-share-key``,
``?key=``, ``?slug=``) are recognised, and refused: the double has no shared links.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from immich_conformance.double import credentials
from immich_conformance.double.database import Database
from immich_conformance.double.validation import ApiError

ACCESS_TOKEN_COOKIE = "immich_access_token"
AUTH_TYPE_COOKIE = "immich_auth_type"
IS_AUTHENTICATED_COOKIE = "immich_is_authenticated"
ALL = "all"


@dataclass(frozen=True)
class Caller:
    user: dict[str, Any]
    session_id: str | None = None
    api_key_permissions: tuple[str, ...] | None = None

    @property
    def user_id(self) -> str:
        return str(self.user["id"])


def is_granted(requested: list[str] | tuple[str, ...], current: tuple[str, ...]) -> bool:
    return ALL in current or all(permission in current for permission in requested)


def bearer_token(headers: Mapping[str, str]) -> str | None:
    parts = (headers.get("authorization") or "").split(" ")
    if parts[0].lower() == "bearer" and len(parts) > 1 and parts[1]:
        return parts[1]
    return None


def cookie_token(headers: Mapping[str, str]) -> str | None:
    """The ``immich_access_token`` cookie, parsed leniently like the ``cookie`` package Immich uses."""
    for pair in (headers.get("cookie") or "").split(";"):
        name, sep, value = pair.partition("=")
        if sep and name.strip() == ACCESS_TOKEN_COOKIE:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            return unquote(value) or None
    return None


async def authenticate(
    db: Database, headers: Mapping[str, str], query: Mapping[str, str], *, permission: str | None = ALL
) -> Caller:
    """The caller, or ApiError(401/403). ``headers`` must look names up case-insensitively."""
    if headers.get("x-immich-share-key") or query.get("key"):
        raise ApiError(401, "Invalid share key")
    if headers.get("x-immich-share-slug") or query.get("slug"):
        raise ApiError(401, "Invalid share slug")
    session = (
        headers.get("x-immich-user-token")
        or headers.get("x-immich-session-token")
        or query.get("sessionKey")
        or bearer_token(headers)
        or cookie_token(headers)
    )
    api_key = headers.get("x-api-key") or query.get("apiKey")
    if session:
        row = await db.fetchone(
            "SELECT s.id AS session_id, u.* FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = %s",
            (credentials.sha256(session),),
        )
        if row is None:
            raise ApiError(401, "Invalid user token")
        return Caller(user=row, session_id=str(row["session_id"]))
    if api_key:
        row = await db.fetchone(
            "SELECT k.permissions AS key_permissions, u.* FROM api_keys k JOIN users u ON u.id = k.user_id "
            "WHERE k.key_hash = %s",
            (credentials.sha256(api_key),),
        )
        if row is None:
            raise ApiError(401, "Invalid API key")
        caller = Caller(user=row, api_key_permissions=tuple(row["key_permissions"]))
        if permission and not is_granted([permission], caller.api_key_permissions or ()):
            raise ApiError(403, f"Missing required permission: {permission}")
        return caller
    raise ApiError(401, "Authentication required")
