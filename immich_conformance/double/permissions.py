"""The permissions an API key can hold (Immich's ``Permission`` enum); ``all`` grants every one."""

from __future__ import annotations

PERMISSIONS: tuple[str, ...] = (
    "all", "activity.create", "activity.read", "activity.update", "activity.delete", "activity.statistics",
    "apiKey.create", "apiKey.read", "apiKey.update", "apiKey.delete", "asset.read", "asset.update", "asset.delete",
    "asset.statistics", "asset.share", "asset.view", "asset.download", "asset.upload", "asset.copy", "asset.derive",
    "asset.edit.get", "asset.edit.create", "asset.edit.delete", "album.create", "album.read", "album.update",
    "album.delete", "album.statistics", "album.share", "album.download", "albumAsset.create", "albumAsset.delete",
    "albumUser.create", "albumUser.update", "albumUser.delete", "auth.changePassword", "authDevice.delete",
    "archive.read", "backup.list", "backup.download", "backup.upload", "backup.delete", "duplicate.read",
    "duplicate.delete", "face.create", "face.read", "face.update", "face.delete", "folder.read", "job.create",
    "job.read", "library.create", "library.read", "library.update", "library.delete", "library.statistics",
    "timeline.read", "timeline.download", "maintenance", "map.read", "map.search", "memory.create", "memory.read",
    "memory.update", "memory.delete", "memory.statistics", "memoryAsset.create", "memoryAsset.delete",
    "notification.create", "notification.read", "notification.update", "notification.delete", "partner.create",
    "partner.read", "partner.update", "partner.delete", "person.create", "person.read", "person.update",
    "person.delete", "person.statistics", "person.merge", "person.reassign", "pinCode.create", "pinCode.update",
    "pinCode.delete", "plugin.create", "plugin.read", "plugin.update", "plugin.delete", "server.about",
    "server.apkLinks", "server.storage", "server.statistics", "server.versionCheck", "serverLicense.read",
    "serverLicense.update", "serverLicense.delete", "session.create", "session.read", "session.update",
    "session.delete", "session.lock", "sharedLink.create", "sharedLink.read", "sharedLink.update",
    "sharedLink.delete", "stack.create", "stack.read", "stack.update", "stack.delete", "sync.stream",
    "syncCheckpoint.read", "syncCheckpoint.update", "syncCheckpoint.delete", "systemConfig.read",
    "systemConfig.update", "systemMetadata.read", "systemMetadata.update", "tag.create", "tag.read", "tag.update",
    "tag.delete", "tag.asset", "user.read", "user.update", "userLicense.create", "userLicense.read",
    "userLicense.update", "userLicense.delete", "userOnboarding.read", "userOnboarding.update",
    "userOnboarding.delete", "userPreference.read", "userPreference.update", "userProfileImage.create",
    "userProfileImage.read", "userProfileImage.update", "userProfileImage.delete", "queue.read", "queue.update",
    "queueJob.create", "queueJob.read", "queueJob.update", "queueJob.delete", "workflow.create", "workflow.read",
    "workflow.update", "workflow.delete", "adminUser.create", "adminUser.read", "adminUser.update",
    "adminUser.delete", "adminSession.read", "adminAuth.unlinkAll",
)

# What each route of the double asks of an API key.
USER_READ = "user.read"
API_KEY_CREATE = "apiKey.create"
ASSET_UPLOAD = "asset.upload"
ASSET_READ = "asset.read"
ASSET_DELETE = "asset.delete"

# The library's routes (users, API keys, albums, assets, tags, shared links), as Immich v3.0.3 declares them
# (``x-immich-permission`` in the OpenAPI document; ``ALL`` where a route declares none).
ALL = "all"
ADMIN_USER_CREATE = "adminUser.create"
ADMIN_USER_READ = "adminUser.read"
ADMIN_USER_DELETE = "adminUser.delete"
API_KEY_READ = "apiKey.read"
API_KEY_DELETE = "apiKey.delete"
SERVER_ABOUT = "server.about"
ASSET_UPDATE = "asset.update"
ASSET_STATISTICS = "asset.statistics"
ASSET_DOWNLOAD = "asset.download"
ALBUM_CREATE = "album.create"
ALBUM_READ = "album.read"
ALBUM_DELETE = "album.delete"
ALBUM_ASSET_CREATE = "albumAsset.create"
ALBUM_USER_CREATE = "albumUser.create"
TAG_CREATE = "tag.create"
TAG_READ = "tag.read"
TAG_DELETE = "tag.delete"
TAG_ASSET = "tag.asset"
SHARED_LINK_CREATE = "sharedLink.create"
SHARED_LINK_READ = "sharedLink.read"
SHARED_LINK_DELETE = "sharedLink.delete"
