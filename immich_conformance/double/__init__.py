"""An Immich v3 API double: the few operations the conformance suite uses, matching Immich v3 on the wire.

Run it with Immich's own environment::

    IMMICH_PORT=2283 IMMICH_HOST=127.0.0.1 IMMICH_MEDIA_LOCATION=/data \\
    DB_HOSTNAME=127.0.0.1 DB_PORT=5432 DB_USERNAME=immich DB_PASSWORD=... DB_DATABASE_NAME=immich \\
    python -m immich_conformance.double

Also read: ``DB_URL`` (instead of the DB_* parts), ``REDIS_HOSTNAME``/``REDIS_PORT`` (reported, not used),
``IMMICH_IGNORE_MOUNT_CHECK_ERRORS``, ``IMMICH_LOG_LEVEL`` (Immich's levels, default log; each request is logged
at debug, as Immich's LoggingInterceptor does), ``IMMICH_DOUBLE_VERSION`` (the version it reports; default
``versions.IMMICH_VERSION``), ``IMMICH_DOUBLE_DB_WAIT`` (seconds to wait for the database at start, default 10) and
``IMMICH_DOUBLE_FAULT`` (a deliberately broken build, see ``version_history``).
Exit codes: 0 after SIGTERM/SIGINT, 1 when the start is refused (storage integrity, database), 2 for bad settings.

Metadata lives in PostgreSQL (tables made at start); originals live under the media location exactly where Immich
puts them. Endpoints: ``/api/server/{ping,version,features,config}``, ``/.well-known/immich``,
``POST /api/auth/admin-sign-up``, ``POST /api/auth/login``, ``POST /api/api-keys``, ``GET /api/users/me``,
``POST /api/assets``, ``GET /api/assets/{id}``, ``POST /api/assets/bulk-upload-check``, ``DELETE /api/assets``, and
socket.io at ``/api/socket.io``. Anything else is ``404 {"message": "Cannot <METHOD> <path>"}``.

Where the double knowingly differs from Immich:
- A multipart upload rejected with 400 after its whole body arrived leaves no file (Immich leaves the received file
  under ``upload/``); a cut connection leaves nothing in both.
- Sidecar files (``sidecarData``) are accepted and not kept; ``livePhotoVideoId`` and ``metadata`` are validated or
  ignored but not linked or stored. No thumbnails, EXIF extraction, jobs or Redis: ``exifInfo`` holds only the file
  size, ``thumbhash``/``width``/``height`` are null, ``on_upload_success`` is sent right after the upload (Immich sends
  it once thumbnails exist).
- Permissions of API keys are checked per route with the permission the double assigns to it (``permissions.py``).
- A body that is not valid JSON gets ``400 {"message": "Unexpected token in JSON at position N"}``; Immich's wording
  for that case may differ. Responses carry aiohttp's ``Server`` header.
- Shared-link keys (``?key=``, ``?slug=``, ``x-immich-share-key``) are always refused: there are no shared links.
"""
