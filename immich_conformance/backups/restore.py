"""A backup restored through Immich's own flow (v3.0.3), driven over its API with an admin API key.

``POST /api/admin/database-backups/upload`` (kept as ``uploaded-<name>``), then ``POST /api/admin/maintenance``
``{"action": "restore_database", "restoreBackupFilename": …}``: the server restarts into maintenance mode and
restores; ``GET /api/admin/maintenance/status`` (with the ``immich_maintenance_token`` cookie from that answer)
reports the task and progress until the server restarts out of maintenance (``active: false``), or stops at
``task: "error"`` with Immich's error. Connections refused while the server restarts are waited out.

A small backup restores in well under a second, and a client slowed down (a busy machine) can miss the maintenance
phase altogether: it then sees the normal server before and after. The restore has happened once the server is out
of maintenance and the API key that started it is refused (401), because the database that knew it was replaced.

After the restore the server's database is the backup's: the API key used to start it no longer exists.
``grant_api_key`` gives the restored admin a new one, written straight into the throwaway release's database.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from ..procs import GiveUp, wait_until
from ..trust_store import system_trust
from .sql_access import Connection, connect

COOKIE = "immich_maintenance_token"
RESTORE_TIMEOUT = 600.0


class RestoreFailed(RuntimeError):
    """Immich's restore failed or never finished; the message is one line."""


@dataclass
class RestoreResult:
    filename: str
    tasks: list[str] = field(default_factory=list)
    """The tasks the status went through (``ready``, ``backup``, ``restore``, ``migrations``…), in order."""
    seconds: float = 0.0


def upload_backup(client: httpx.Client, path: Path) -> str:
    """Upload ``path``; the name Immich keeps it under."""
    with path.open("rb") as f:
        answer = client.post("/api/admin/database-backups/upload", files={"file": (path.name, f, "application/gzip")},
                             timeout=300)
    if answer.status_code != 201:
        raise RestoreFailed(f"uploading {path.name} answered {answer.status_code}: {answer.text[:200]}")
    return f"uploaded-{path.name}"


def restore_backup(client: httpx.Client, path: Path, *, timeout: float = RESTORE_TIMEOUT,
                   progress: Callable[[str], None] | None = None) -> RestoreResult:
    """Restore ``path`` into the server behind ``client`` (an admin API key in its headers) by Immich's own flow."""
    say = progress or (lambda message: None)
    started = time.monotonic()
    filename = upload_backup(client, path)
    asked = client.post("/api/admin/maintenance", json={"action": "restore_database",
                                                         "restoreBackupFilename": filename})
    if asked.status_code != 201:
        raise RestoreFailed(f"starting the restore answered {asked.status_code}: {asked.text[:200]}")
    token = asked.cookies.get(COOKIE)
    if not token:
        raise RestoreFailed("starting the restore gave no maintenance cookie: the server is not Immich v2.5 or newer")
    result = RestoreResult(filename)
    seen_maintenance = False

    def finished() -> bool:
        nonlocal seen_maintenance
        status = httpx.get(str(client.base_url.join("/api/admin/maintenance/status")), cookies={COOKIE: token},
                           timeout=5, verify=system_trust()).json()
        task = status.get("task")
        if task and (not result.tasks or result.tasks[-1] != task):
            result.tasks.append(task)
            say(f"restore: {task}")
        if status.get("active"):
            seen_maintenance = True
        if task == "error":
            raise GiveUp(RestoreFailed(f"Immich's restore failed: {status.get('error', 'no error given')}"))
        if status.get("active"):
            return False
        return seen_maintenance or client.get("/api/users/me", timeout=5).status_code == 401

    try:
        wait_until(finished, timeout=timeout, interval=0.2, what="the restore to finish")
    except GiveUp as exc:
        raise exc.args[0] from None
    except Exception as exc:  # noqa: BLE001 - a timeout names what was seen last
        raise RestoreFailed(f"the restore did not finish within {timeout:.0f}s (tasks seen: "
                            f"{', '.join(result.tasks) or 'none'}): {str(exc).splitlines()[0]}") from None
    result.seconds = time.monotonic() - started
    return result


def grant_api_key(dsn: str | Connection, name: str = "verify-backup", user_id: str | None = None) -> str:
    """A new API key with every permission for the restored admin (or the user ``user_id``), written into the
    release's database (the double's ``api_keys``/``users``, or Immich's ``api_key``/``user``)."""
    secret = secrets.token_urlsafe(32)
    digest = hashlib.sha256(secret.encode()).digest()
    with connect(dsn) as conn:
        tables = {r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'").fetchall()}
        if "api_keys" in tables:
            owner = (user_id,) if user_id else conn.execute(
                "SELECT id FROM users WHERE is_admin AND deleted_at IS NULL LIMIT 1").fetchone()
            if owner is None:
                raise RestoreFailed("the restored database has no admin")
            conn.execute("INSERT INTO api_keys (id, key_hash, user_id, name, permissions) VALUES (%s, %s, %s, %s, %s)",
                         (uuid.uuid4(), digest, owner[0], name, ["all"]))
        else:
            owner = (user_id,) if user_id else conn.execute(
                'SELECT id FROM "user" WHERE "isAdmin" AND "deletedAt" IS NULL LIMIT 1').fetchone()
            if owner is None:
                raise RestoreFailed("the restored database has no admin")
            conn.execute('INSERT INTO api_key (name, key, "userId", permissions) VALUES (%s, %s, %s, %s)',
                         (name, digest.hex(), owner[0], ["all"]))
    return secret
