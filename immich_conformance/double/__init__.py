"""An Immich v3 API double: the few operations the conformance suite uses, matching Immich v3 on the wire.

Run it with Immich's own environment::

    IMMICH_PORT=2283 IMMICH_HOST=127.0.0.1 IMMICH_MEDIA_LOCATION=/data \\
    DB_HOSTNAME=127.0.0.1 DB_PORT=5432 DB_USERNAME=immich DB_PASSWORD=... DB_DATABASE_NAME=immich \\
    python -m immich_conformance.double

Also read: ``DB_URL`` (instead of the DB_* parts), ``REDIS_HOSTNAME``/``REDIS_PORT`` (reported, not used),
``IMMICH_IGNORE_MOUNT_CHECK_ERRORS``, ``IMMICH_LOG_LEVEL`` (Immich's levels, default log; at debug, as Immich's
LoggingInterceptor, each API request its guard let in is logged with its path, a 401/403 only as
``HttpException(401): {...}``, web-app paths and socket.io not at all; lines in Nest's colours unless ``NO_COLOR``
is set, as Immich's), ``IMMICH_DOUBLE_VERSION`` (the version it
reports; default ``versions.IMMICH_VERSION``), ``IMMICH_DOUBLE_DB_WAIT`` (seconds to wait for the database at start,
default 10), ``IMMICH_DOUBLE_JOB_DELAY`` (seconds from an answer to the background job it queued: a duplicate's copy
removed, a forced delete's file removed; default and minimum 0.02, Immich's own; widen it to test that a client
waits for Immich's jobs) and
``IMMICH_DOUBLE_FAULT`` (a deliberately broken build, see ``version_history``).
Exit codes: 0 after SIGTERM/SIGINT, 1 when the start is refused (storage integrity, database) or IMMICH_LOG_LEVEL is
not one of Immich's levels in lower case (as Immich), 2 for other bad settings.

Metadata lives in PostgreSQL (tables made at start); originals live under the media location exactly where Immich
puts them. Endpoints: ``/api/server/{ping,version,features,config}``, ``/.well-known/immich``,
``POST /api/auth/admin-sign-up``, ``POST /api/auth/login``, ``POST /api/api-keys``, ``GET /api/users/me``,
``POST /api/assets``, ``GET /api/assets/{id}``, ``POST /api/assets/bulk-upload-check``, ``DELETE /api/assets``,
``GET /api/queues`` and ``GET /api/jobs`` (the double's background jobs per Immich queue, see ``jobs``), and
socket.io at ``/api/socket.io``. A library (``library_routes``): ``GET /api/server/{about,media-types}``;
``POST|GET /api/admin/users``, ``GET|DELETE /api/admin/users/{id}``, ``GET /api/users``; ``GET /api/api-keys``,
``GET /api/api-keys/me``, ``DELETE /api/api-keys/{id}``, ``POST /api/auth/logout``; ``GET /api/assets/statistics``,
``PUT /api/assets``, ``PUT /api/assets/{id}``, ``GET /api/assets/{id}/original``, ``POST /api/trash/{restore,empty}``;
``GET|POST /api/albums``, ``GET|DELETE /api/albums/{id}``, ``PUT /api/albums/{id}/{assets,users}``;
``GET|POST /api/tags``, ``DELETE /api/tags/{id}``, ``PUT /api/tags/assets``, ``PUT /api/tags/{id}/assets``;
``GET|POST /api/shared-links``, ``GET /api/shared-links/me``, ``GET|DELETE /api/shared-links/{id}``.
Backups, maintenance and integrity (``backups``, ``maintenance``, ``restore``, ``integrity``, ``manual_jobs``):
``POST /api/jobs`` (``backup-database``, ``integrity-…``), ``GET|DELETE /api/admin/database-backups``,
``GET /api/admin/database-backups/{filename}``, ``POST /api/admin/database-backups/{upload,start-restore}``,
``POST /api/admin/maintenance``, ``GET /api/admin/maintenance/{status,detect-install}``,
``POST /api/admin/maintenance/login``, ``GET /api/admin/integrity/{summary,report}``,
``GET /api/admin/integrity/report/{type}/csv``; backups written as Immich writes them (``pg_dump`` | ``gzip`` into
``<media>/backups``, on the config's cron), and the restore run by a maintenance mode entered and left by restarts.
Any other ``GET`` outside ``/api`` is the web app (200, a small HTML page); anything else is
``404 {"message": "Cannot <METHOD> <path>"}``. A JSON body over 10 MB is ``500 {"message": "Internal server error"}``
before routing and authentication, as Express' json parser makes it in Immich. Express' headers are Immich's
(``express``): ``X-Powered-By: Express``, a strong ETag and 304 for an unchanged ``GET``; ``X-Correlation-ID`` on
what Immich's API middleware answers (not ``/.well-known/immich``); engine.io's own refusals at ``/api/socket.io/``
(a long-polling handshake: ``{"code":0,"message":"Transport unknown"}``), without either header.

Like Immich, and inconvenient on purpose: uploads are written under their final name while they grow; a duplicate
upload's received copy is on disk when the 200 goes out and removed by a background job afterwards; a forced delete
answers 204 and its files go later, by a job that a stopping server leaves undone; a multipart upload refused by
validation (400) leaves its received file under ``upload/`` with no database row (a cut connection, or a body multer
refuses, leaves nothing); ``on_upload_success`` goes out ~0.35 s after the upload (once thumbnails would exist), never
for a hidden asset or bytes the thumbnail job could not decode (``thumbnails``).

Where the double knowingly differs from Immich:
- Sidecar files (``sidecarData``) are accepted and not kept; ``livePhotoVideoId`` and ``metadata`` are validated or
  ignored but not linked or stored. No thumbnails, EXIF extraction or Redis: ``exifInfo`` holds only the file size,
  ``thumbhash``/``width``/``height`` stay null; whether a file would decode is judged from its structure
  (``thumbnails``). Background jobs wait ``IMMICH_DOUBLE_JOB_DELAY`` and are counted as active meanwhile, and leave
  no completed or failed count. A forced delete removes the database row at once (Immich marks the asset deleted and
  its job removes the row with the files).
- The web app is a placeholder page; its static files (``/_app/...``) are the same page. Some validation wordings
  (Immich: "expected ISO 8601 datetime string", ``isFavorite`` as "stringbool") differ. A user's avatar colour is
  the one Immich derives from the e-mail address; one set through the API is not kept.
  ``/api/server/media-types`` lists each kind's extensions sorted (Immich: in its source's order, raw formats in a
  group of their own), which ``immich server-info`` prints as they come.
- Permissions of API keys are checked per route with the permission the double assigns to it (``permissions.py``).
- A body that is not valid JSON gets ``400 {"message": "Unexpected token in JSON at position N"}``; Immich's wording
  for that case may differ. Responses carry aiohttp's ``Server`` header (Immich's none) and no ``Vary``.
- Shared-link keys open ``GET /api/shared-links/me``, ``GET /api/assets/{id}``, ``GET /api/assets/{id}/original``
  and ``GET /api/albums/{id}`` only; other routes Immich opens to links (upload into a link, thumbnails, downloads,
  timeline) answer 403 "Forbidden" or 404. A password-protected link is always "Password required" (there is no
  ``POST /api/shared-links/login``); ``showMetadata: false`` does not strip the assets' metadata.
- Album, asset and tag access: owner and album members only (no partners). ``PUT /api/assets/{id}`` stores the
  description, date, place and rating in ``exifInfo`` as sent; Immich also rewrites the sidecar and re-reads
  metadata. A user's quota, chosen avatar colour, storage label checks and notifications are not modelled;
  ``DELETE /api/admin/users/{id}`` without ``force`` only marks the user deleted (Immich removes them after 7 days).
"""
