"""Response bodies, shaped like Immich v3's DTOs (see the OpenAPI document's components)."""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from typing import Any

EXIF_FIELDS = (
    "make", "model", "exifImageWidth", "exifImageHeight", "orientation", "dateTimeOriginal", "modifyDate", "timeZone",
    "lensModel", "fNumber", "focalLength", "iso", "exposureTime", "latitude", "longitude", "city", "state", "country",
    "description", "projectionType", "rating",
)
AVATAR_COLORS = ("primary", "pink", "red", "yellow", "blue", "green", "purple", "orange", "gray", "amber")


def iso(value: datetime) -> str:
    """JavaScript's Date.toISOString(): UTC, milliseconds, 'Z'."""
    utc = value.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def avatar_color(email: str) -> str:
    """The colour Immich gives a user who never chose one: from the e-mail address's code points, summed, among its
    UserAvatarColor values in their order (mapUser's emailToAvatarColor)."""
    return AVATAR_COLORS[sum(ord(letter) for letter in email) % len(AVATAR_COLORS)]


def user_admin(user: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(user["id"]),
        "email": user["email"],
        "name": user["name"],
        "profileImagePath": "",
        "avatarColor": avatar_color(user["email"]),
        "profileChangedAt": iso(user["profile_changed_at"]),
        "storageLabel": user["storage_label"],
        "shouldChangePassword": user["should_change_password"],
        "isAdmin": user["is_admin"],
        "createdAt": iso(user["created_at"]),
        "deletedAt": None,
        "updatedAt": iso(user["updated_at"]),
        "oauthId": "",
        "quotaSizeInBytes": None,
        "quotaUsageInBytes": user["quota_usage_bytes"],
        "status": "active",
        "license": None,
    }


def user_summary(user: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(user["id"]),
        "email": user["email"],
        "name": user["name"],
        "profileImagePath": "",
        "avatarColor": avatar_color(user["email"]),
        "profileChangedAt": iso(user["profile_changed_at"]),
    }


def login(user: dict[str, Any], token: str, *, is_onboarded: bool) -> dict[str, Any]:
    return {
        "accessToken": token,
        "userId": str(user["id"]),
        "userEmail": user["email"],
        "name": user["name"],
        "isAdmin": user["is_admin"],
        "profileImagePath": "",
        "shouldChangePassword": user["should_change_password"],
        "isOnboarded": is_onboarded,
    }


def api_key(key: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(key["id"]),
        "name": key["name"],
        "createdAt": iso(key["created_at"]),
        "updatedAt": iso(key["updated_at"]),
        "permissions": list(key["permissions"]),
    }


def asset(row: dict[str, Any], owner: dict[str, Any]) -> dict[str, Any]:
    exif: dict[str, Any] = dict.fromkeys(EXIF_FIELDS)
    exif["fileSizeInByte"] = row["file_size"]
    return {
        "id": str(row["id"]),
        "createdAt": iso(row["created_at"]),
        "ownerId": str(row["owner_id"]),
        "owner": user_summary(owner),
        "libraryId": None,
        "type": row["asset_type"],
        "originalPath": row["original_path"],
        "originalFileName": row["original_file_name"],
        "originalMimeType": row["mime_type"],
        "thumbhash": None,
        "fileCreatedAt": iso(row["file_created_at"]),
        "fileModifiedAt": iso(row["file_modified_at"]),
        "localDateTime": iso(row["local_date_time"]),
        "updatedAt": iso(row["updated_at"]),
        "isFavorite": row["is_favorite"],
        "isArchived": row["visibility"] == "archive",
        "isTrashed": row["deleted_at"] is not None,
        "isOffline": False,
        "visibility": row["visibility"],
        "duration": row["duration"],
        "exifInfo": exif,
        "livePhotoVideoId": None,
        "tags": [],
        "people": [],
        "checksum": base64.b64encode(bytes(row["checksum"])).decode(),
        "stack": None,
        "isEdited": False,
        "duplicateId": None,
        "resized": False,
        "hasMetadata": True,
        "width": None,
        "height": None,
    }
