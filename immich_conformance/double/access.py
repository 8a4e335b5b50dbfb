"""Who may do what with which ids: Immich's access checks (``AccessRepository``) for the library's resources.

Each function answers with the subset of ``ids`` the caller may use; ``require`` turns a missing id into Immich's
``400 {"message": "Not found or no <permission> access"}``.
"""

from __future__ import annotations

from collections.abc import Iterable

from immich_conformance.double.auth import Caller
from immich_conformance.double.database import Database
from immich_conformance.double.validation import ApiError

OWNER = "owner"
EDITOR = "editor"
VIEWER = "viewer"


def require(allowed: set[str], ids: Iterable[str], permission: str) -> None:
    if any(i not in allowed for i in ids):
        raise ApiError(400, f"Not found or no {permission} access")


async def _ids(db: Database, sql: str, params: tuple[object, ...]) -> set[str]:
    return {str(row["id"]) for row in await db.fetchall(sql, params)}


async def owned_assets(db: Database, caller: Caller, ids: list[str]) -> set[str]:
    """asset.update, asset.delete, asset.share: the owner only (a shared link never)."""
    if not ids or caller.shared_link is not None:
        return set()
    return await _ids(db, "SELECT id FROM assets WHERE id = ANY(%s::uuid[]) AND owner_id = %s",
                      (ids, caller.user_id))


async def readable_assets(db: Database, caller: Caller, ids: list[str], *, download: bool = False) -> set[str]:
    """asset.read / asset.view / asset.download: the owner, members of an album holding the asset, or a shared link
    holding it (its album's assets for an album link; downloads only when the link allows them)."""
    if not ids:
        return set()
    link = caller.shared_link
    if link is not None:
        if download and not link.get("allow_download"):
            return set()
        return await _ids(
            db,
            "SELECT a.id FROM assets a WHERE a.id = ANY(%s::uuid[]) AND a.deleted_at IS NULL AND ("
            " EXISTS (SELECT 1 FROM shared_link_assets s WHERE s.shared_link_id = %s AND s.asset_id = a.id)"
            " OR EXISTS (SELECT 1 FROM shared_links l JOIN album_assets aa ON aa.album_id = l.album_id "
            "            WHERE l.id = %s AND aa.asset_id = a.id))",
            (ids, link["id"], link["id"]),
        )
    return await _ids(
        db,
        "SELECT a.id FROM assets a WHERE a.id = ANY(%s::uuid[]) AND (a.owner_id = %s OR (a.deleted_at IS NULL AND "
        " EXISTS (SELECT 1 FROM album_assets aa JOIN albums al ON al.id = aa.album_id AND al.deleted_at IS NULL "
        "         JOIN album_users au ON au.album_id = aa.album_id WHERE aa.asset_id = a.id AND au.user_id = %s)))",
        (ids, caller.user_id, caller.user_id),
    )


async def albums(db: Database, caller: Caller, ids: list[str], *, roles: tuple[str, ...]) -> set[str]:
    """Albums the caller is a member of with one of ``roles`` (album.read: any role; albumAsset.create: owner or
    editor; album.share/update/delete: owner). A shared link reads its own album only."""
    if not ids:
        return set()
    link = caller.shared_link
    if link is not None:
        if roles != (OWNER, EDITOR, VIEWER) or not link.get("album_id"):
            return set()
        return {str(link["album_id"])} & set(ids)
    return await _ids(
        db,
        "SELECT al.id FROM albums al JOIN album_users au ON au.album_id = al.id "
        "WHERE al.id = ANY(%s::uuid[]) AND al.deleted_at IS NULL AND au.user_id = %s AND au.role = ANY(%s)",
        (ids, caller.user_id, list(roles)),
    )


ANY_ROLE = (OWNER, EDITOR, VIEWER)


async def owned_tags(db: Database, caller: Caller, ids: list[str]) -> set[str]:
    if not ids or caller.shared_link is not None:
        return set()
    return await _ids(db, "SELECT id FROM tags WHERE id = ANY(%s::uuid[]) AND user_id = %s", (ids, caller.user_id))


def bulk_add_results(ids: list[str], present: set[str], allowed: set[str]) -> tuple[list[dict[str, object]], list[str]]:
    """Immich's per-id answer to adding assets to an album or a tag (``BulkIdResponseDto``): ``duplicate`` when
    already in, ``no_permission`` when not the caller's (or unknown), else success; and the ids to add, in order."""
    results: list[dict[str, object]] = []
    added: list[str] = []
    for asset_id in ids:
        if asset_id in present:
            results.append({"id": asset_id, "success": False, "error": "duplicate"})
        elif asset_id not in allowed:
            results.append({"id": asset_id, "success": False, "error": "no_permission"})
        else:
            present.add(asset_id)
            added.append(asset_id)
            results.append({"id": asset_id, "success": True})
    return results, added
