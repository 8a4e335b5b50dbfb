"""Response bodies of the library endpoints (albums, tags, shared links, users), shaped like Immich v3's DTOs."""

from __future__ import annotations

import base64
from typing import Any

from immich_conformance.double import dtos
from immich_conformance.double.database import Database


def user(row: dict[str, Any]) -> dict[str, Any]:
    """UserResponseDto."""
    return dtos.user_summary(row)


def user_admin(row: dict[str, Any]) -> dict[str, Any]:
    """UserAdminResponseDto, with the deletion state Immich reports."""
    body = dtos.user_admin(row)
    if row.get("deleted_at") is not None:
        body["deletedAt"] = dtos.iso(row["deleted_at"])
    body["status"] = row.get("status") or "active"
    return body


def tag(row: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": str(row["id"]),
        "name": row["value"].split("/")[-1],
        "value": row["value"],
        "createdAt": dtos.iso(row["created_at"]),
        "updatedAt": dtos.iso(row["updated_at"]),
    }
    if row.get("parent_id"):
        body["parentId"] = str(row["parent_id"])
    if row.get("color"):
        body["color"] = row["color"]
    return body


def share_key_text(key: bytes) -> str:
    return base64.urlsafe_b64encode(bytes(key)).decode().rstrip("=")


async def asset(db: Database, row: dict[str, Any], owner: dict[str, Any] | None = None) -> dict[str, Any]:
    """AssetResponseDto with what users edit (description, favourites, dates) and the asset's tags."""
    if owner is None:
        owner = await db.fetchone("SELECT * FROM users WHERE id = %s", (row["owner_id"],))
        assert owner is not None
    body = dtos.asset(row, owner)
    edits = row.get("exif_edits") or {}
    for key, value in edits.items():
        if key in body["exifInfo"]:
            body["exifInfo"][key] = value
    tags = await db.fetchall(
        "SELECT t.* FROM tags t JOIN tag_assets ta ON ta.tag_id = t.id WHERE ta.asset_id = %s ORDER BY t.value",
        (row["id"],),
    )
    body["tags"] = [tag(t) for t in tags]
    return body


async def album(db: Database, row: dict[str, Any], viewer_id: str) -> dict[str, Any]:
    """AlbumResponseDto: members with the owner first, then the viewer, then the rest by name; counts leave out
    trashed assets."""
    members = await db.fetchall(
        "SELECT au.role, u.* FROM album_users au JOIN users u ON u.id = au.user_id "
        "WHERE au.album_id = %s AND u.deleted_at IS NULL",
        (row["id"],),
    )
    members.sort(key=lambda m: (m["role"] != "owner", str(m["id"]) != viewer_id, m["name"]))
    stats = await db.fetchone(
        "SELECT count(a.id) AS n, min(a.local_date_time) AS first, max(a.local_date_time) AS last, "
        "max(a.updated_at) AS modified FROM album_assets aa JOIN assets a ON a.id = aa.asset_id "
        "WHERE aa.album_id = %s AND a.deleted_at IS NULL",
        (row["id"],),
    )
    assert stats is not None
    link = await db.fetchone("SELECT 1 AS found FROM shared_links WHERE album_id = %s LIMIT 1", (row["id"],))
    body: dict[str, Any] = {
        "id": str(row["id"]),
        "albumName": row["album_name"],
        "description": row["description"],
        "albumThumbnailAssetId": str(row["thumbnail_asset_id"]) if row["thumbnail_asset_id"] else None,
        "createdAt": dtos.iso(row["created_at"]),
        "updatedAt": dtos.iso(row["updated_at"]),
        "albumUsers": [{"user": user(m), "role": m["role"]} for m in members],
        "shared": len(members) > 1 or link is not None,
        "hasSharedLink": link is not None,
        "assetCount": stats["n"],
        "isActivityEnabled": row["is_activity_enabled"],
        "order": row["asset_order"],
    }
    if stats["n"]:
        body["startDate"] = dtos.iso(stats["first"])
        body["endDate"] = dtos.iso(stats["last"])
        body["lastModifiedAssetTimestamp"] = dtos.iso(stats["modified"])
    return body


async def shared_link(db: Database, row: dict[str, Any], viewer_id: str) -> dict[str, Any]:
    """SharedLinkResponseDto: an album link carries its album (without assets), an individual link its assets."""
    body: dict[str, Any] = {
        "id": str(row["id"]),
        "description": row["description"],
        "password": row["password"],
        "userId": str(row["user_id"]),
        "key": share_key_text(row["key"]),
        "type": row["type"],
        "createdAt": dtos.iso(row["created_at"]),
        "expiresAt": dtos.iso(row["expires_at"]) if row["expires_at"] else None,
        "assets": [],
        "allowUpload": row["allow_upload"],
        "allowDownload": row["allow_download"],
        "showMetadata": row["show_exif"],
        "slug": row["slug"],
    }
    if row["album_id"]:
        album_row = await db.fetchone("SELECT * FROM albums WHERE id = %s", (row["album_id"],))
        if album_row is not None:
            body["album"] = await album(db, album_row, viewer_id)
    else:
        assets = await db.fetchall(
            "SELECT a.* FROM assets a JOIN shared_link_assets s ON s.asset_id = a.id "
            "WHERE s.shared_link_id = %s AND a.deleted_at IS NULL ORDER BY a.file_created_at DESC",
            (row["id"],),
        )
        body["assets"] = [await asset(db, a) for a in assets]
    return body
