"""Who is calling: Immich's order of credentials and its 401/403 messages.

A session token (``x-immich-user-token``, ``x-immich-session-token``, ``?sessionKey=``, ``Authorization: Bearer``, or
the ``immich_access_token`` cookie) is looked at first and must be a login token: an API key sent that way is
"Invalid user token". Otherwise an API key (``x-api-key`` or ``?apiKey=``). A shared-link key (``x-immich-share-key``,
``?key=``) or slug (``x-immich-share-slug``, ``?slug=``) comes before both: an unknown or expired one is 401, a valid
one acts as the link's owner on the routes Immich opens to shared links and is 403 "Forbidden" elsewhere. A
non-admin on an admin route is 403 "Forbidden". Deleted users' sessions and keys are refused.
"""

from __future__ import annotations

import base64
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
    api_key_id: str | None = None
    shared_link: dict[str, Any] | None = None

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


def share_key_bytes(key: str) -> bytes | None:
    """A shared link's key as Immich reads it: 100 characters are hex, anything else base64url."""
    try:
        if len(key) == 100:
            return bytes.fromhex(key)
        return base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
    except ValueError:
        return None


async def _shared_link_caller(db: Database, column: str, value: Any, refusal: str) -> Caller:
    row = await db.fetchone(
        f"SELECT to_jsonb(l) AS link, u.* FROM shared_links l JOIN users u ON u.id = l.user_id "  # noqa: S608
        f"WHERE l.{column} = %s AND u.deleted_at IS NULL AND (l.expires_at IS NULL OR l.expires_at > now())",
        (value,),
    )
    if row is None:
        raise ApiError(401, refusal)
    return Caller(user=row, shared_link=row.pop("link"))


async def authenticate(
    db: Database, headers: Mapping[str, str], query: Mapping[str, str], *, permission: str | None = ALL,
    shared_link: bool = False, admin: bool = False,
) -> Caller:
    """The caller, or ApiError(401/403). ``headers`` must look names up case-insensitively. ``shared_link``: the
    route accepts shared-link keys; ``admin``: only admins may call it."""
    caller = await _identify(db, headers, query)
    if admin and not caller.user["is_admin"]:
        raise ApiError(403, "Forbidden")
    if caller.shared_link is not None and not shared_link:
        raise ApiError(403, "Forbidden")
    if caller.api_key_permissions is not None and permission and not is_granted([permission],
                                                                                  caller.api_key_permissions):
        raise ApiError(403, f"Missing required permission: {permission}")
    return caller


async def _identify(db: Database, headers: Mapping[str, str], query: Mapping[str, str]) -> Caller:
    share_key = headers.get("x-immich-share-key") or query.get("key")
    if share_key:
        key = share_key_bytes(share_key)
        if not key:
            raise ApiError(401, "Invalid share key")
        return await _shared_link_caller(db, "key", key, "Invalid share key")
    share_slug = headers.get("x-immich-share-slug") or query.get("slug")
    if share_slug:
        return await _shared_link_caller(db, "slug", share_slug, "Invalid share slug")
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
            "SELECT s.id AS session_id, u.* FROM sessions s JOIN users u ON u.id = s.user_id "
            "WHERE s.token_hash = %s AND u.deleted_at IS NULL",
            (credentials.sha256(session),),
        )
        if row is None:
            raise ApiError(401, "Invalid user token")
        return Caller(user=row, session_id=str(row["session_id"]))
    if api_key:
        row = await db.fetchone(
            "SELECT k.id AS key_id, k.permissions AS key_permissions, u.* FROM api_keys k "
            "JOIN users u ON u.id = k.user_id WHERE k.key_hash = %s AND u.deleted_at IS NULL",
            (credentials.sha256(api_key),),
        )
        if row is None:
            raise ApiError(401, "Invalid API key")
        return Caller(user=row, api_key_permissions=tuple(row["key_permissions"]), api_key_id=str(row["key_id"]))
    raise ApiError(401, "Authentication required")
