"""Immich's maintenance mode and restore flow in the double (v3.0.3): a backup of one server restores into another
through ``POST /api/admin/maintenance`` (restart, maintenance worker, status with task and progress, restart out),
the media location moves with it; a failed restore stays in maintenance with Immich's error and rolls back; answers
checked against the OpenAPI document where Immich's own answers match it."""

from __future__ import annotations

import contextlib
import gzip
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from double_harness import ADMIN_PASSWORD, DoubleServer, checked_client, sign_up_and_log_in, upload_form, wait_for

from immich_conformance.backups.library import copy_library, sample_originals
from immich_conformance.backups.restore import COOKIE, RestoreFailed, grant_api_key, restore_backup
from immich_conformance.double.spec_check import OpenApiSpec


def _seeded(double_factory: Any, spec: OpenApiSpec) -> tuple[DoubleServer, str, list[str]]:
    """A server with an admin, two uploads and an album; its API key and asset ids."""
    server = double_factory().start()
    with checked_client(server.url, spec) as client:
        key = sign_up_and_log_in(client).api_key
        client.cookies.clear()
        ids = [client.post("/api/assets", headers={"x-api-key": key}, **upload_form(os.urandom(4_000 + i))).json()["id"]
               for i in range(2)]
        album = client.post("/api/albums", headers={"x-api-key": key}, json={"albumName": "Summer", "assetIds": ids})
        assert album.status_code == 201, album.text
    return server, key, ids


def _backup(server: DoubleServer, key: str) -> Path:
    with httpx.Client(base_url=server.url, headers={"x-api-key": key}, timeout=10) as client:
        assert client.post("/api/jobs", json={"name": "backup-database"}).status_code == 204
        names = wait_for(lambda: client.get("/api/admin/database-backups").json()["backups"], "a backup")
    return server.media / "backups" / names[0]["filename"]


def _fresh(double_factory: Any) -> tuple[DoubleServer, httpx.Client]:
    server = double_factory().start()
    client = httpx.Client(base_url=server.url, timeout=10)
    key = sign_up_and_log_in(client).api_key
    client.cookies.clear()
    client.headers["x-api-key"] = key
    return server, client


def test_a_backup_of_one_server_restores_into_another(double_factory: Any, spec: OpenApiSpec) -> None:
    source, source_key, ids = _seeded(double_factory, spec)
    backup = _backup(source, source_key)
    target, client = _fresh(double_factory)
    with contextlib.closing(client):
        result = restore_backup(client, backup, timeout=60)
        assert set(result.tasks) <= {"ready", "backup", "restore", "migrations"}, result.tasks
        assert "Database Restore Success" in target.log() and "Restore progress ~ 100.00%" in target.log()
        assert client.get("/api/users/me").status_code == 401, "the target's own key survived the restore"
        client.headers["x-api-key"] = grant_api_key(target.db.dsn)
        with checked_client(target.url, spec, headers={"x-api-key": client.headers["x-api-key"]}) as checked:
            assert checked.get("/api/users/me").json()["email"] == "admin@example.com"
            albums = checked.get("/api/albums").json()
            assert [(a["albumName"], a["assetCount"]) for a in albums] == [("Summer", 2)]
            asset = checked.get(f"/api/assets/{ids[0]}").json()
            assert asset["originalPath"].startswith(str(target.media)), "the media location did not move over"
            assert checked.get("/api/admin/maintenance/status").json() == {"active": False, "action": "end"}
    sample = sample_originals(target.db.dsn, target.media, per_user=1)
    first = Path(asset["originalPath"]).relative_to(target.media)
    assert sample == [str(first)], "the sample is not the user's first upload"
    assert copy_library(source.media, target.media, sample=sample) == 1 and (target.media / first).is_file()
    restore_points = list((target.media / "backups").glob("restore-point-immich-db-backup-*.sql.gz"))
    assert len(restore_points) == 1, "no restore point was written before the restore"


def test_a_restore_is_seen_finished_by_a_client_that_missed_the_maintenance_phase(
        double_factory: Any, spec: OpenApiSpec, monkeypatch: pytest.MonkeyPatch) -> None:
    """A client too slow to see the maintenance worker (its first status request goes out only once the restored
    server is back) still sees the restore finish, instead of waiting for a phase that is over."""
    source, source_key, _ = _seeded(double_factory, spec)
    backup = _backup(source, source_key)
    target, client = _fresh(double_factory)
    real_get = httpx.get

    def late_get(url: Any, **kwargs: Any) -> httpx.Response:
        wait_for(lambda: "Database Restore Success" in target.log()
                 and real_get(f"{target.url}/api/server/config", timeout=2).json().get("maintenanceMode") is False,
                 "the restored server back out of maintenance")
        return real_get(url, **kwargs)

    monkeypatch.setattr("immich_conformance.backups.restore.httpx.get", late_get)
    with contextlib.closing(client):
        result = restore_backup(client, backup, timeout=30)
        assert result.tasks == [], "the client was meant to miss the maintenance phase"
        assert client.get("/api/users/me").status_code == 401, "the target's own key survived the restore"


def test_in_maintenance_only_the_maintenance_worker_answers(double_factory: Any, spec: OpenApiSpec) -> None:
    server, client = _fresh(double_factory)
    with contextlib.closing(client):
        started = client.post("/api/admin/maintenance", json={"action": "start"})
        assert started.status_code == 201 and started.cookies.get(COOKIE)
        token = started.cookies[COOKIE]
        client.cookies.clear()
        wait_for(lambda: httpx.get(f"{server.url}/api/server/config", timeout=2).json() == {"maintenanceMode": True},
                 "the restart into maintenance mode")
        assert client.get("/api/users/me").json() == {"message": "Cannot GET /api/users/me"}
        listed = client.get("/api/admin/database-backups")
        assert (listed.status_code, listed.json()) == (401, {"message": "Missing JWT Token"}), "an API key got in"
        with checked_client(server.url, spec, cookies={COOKIE: token}) as checked:
            assert checked.get("/api/admin/database-backups").json() == {"backups": []}
            assert checked.get("/api/admin/maintenance/status").json() == {"active": True, "action": "start"}
            assert checked.post("/api/admin/maintenance/login", json={}).json() == {"username": "Admin"}
            storage = checked.get("/api/admin/maintenance/detect-install").json()["storage"]
            assert [(f["folder"], f["readable"], f["writable"]) for f in storage] == [
                (name, True, True) for name in ("encoded-video", "library", "upload", "profile", "thumbs", "backups")]
            assert httpx.get(f"{server.url}/.well-known/immich", timeout=5).status_code == 404
            page = httpx.get(f"{server.url}/photos", timeout=5)
            assert page.status_code == 302 and page.headers["location"] == "/maintenance?continue=%2Fphotos"
            assert checked.post("/api/admin/maintenance", json={"action": "end"}).status_code == 201
        wait_for(lambda: client.get("/api/users/me").status_code == 200, "the restart out of maintenance mode")


def test_start_restore_is_refused_once_an_admin_exists(double_factory: Any, spec: OpenApiSpec) -> None:
    server, client = _fresh(double_factory)
    with contextlib.closing(client), checked_client(server.url, spec) as checked:
        refused = checked.post("/api/admin/database-backups/start-restore")
        assert (refused.status_code, refused.json()) == (400, {"message": "The server already has an admin"})
        missing = checked.post("/api/admin/maintenance", headers={"x-api-key": client.headers["x-api-key"]},
                               json={"action": "restore_database"})
        assert missing.status_code == 400 and missing.json()["errors"][0]["path"] == ["restoreBackupFilename"]


def _restore_fails(double_factory: Any, backup_bytes: bytes, name: str, expected: str) -> None:
    server, client = _fresh(double_factory)
    before = server.db.query("SELECT email FROM users")
    backup = server.media / f"{name}"
    backup.write_bytes(backup_bytes)
    with contextlib.closing(client), pytest.raises(RestoreFailed) as failed:
        restore_backup(client, backup, timeout=60)
    assert expected in str(failed.value)
    public = httpx.get(f"{server.url}/api/admin/maintenance/status", timeout=5).json()
    assert public == {"active": True, "action": "restore_database", "task": "error",
                      "error": "Something went wrong, see logs!"}
    assert server.db.query("SELECT email FROM users") == before, "the failed restore changed the database"


def test_a_truncated_backup_fails_the_restore_and_changes_nothing(double_factory: Any, spec: OpenApiSpec) -> None:
    source, key, _ = _seeded(double_factory, spec)
    whole = _backup(source, key).read_bytes()
    _restore_fails(double_factory, whole[: len(whole) // 2], "immich-db-backup-20260101T000000-v3.0.3-pg15.1.sql.gz",
                   "Error: unexpected end of file")


def test_a_dump_of_another_application_is_rolled_back(double_factory: Any, run_dir: Path) -> None:
    sql = ("-- PostgreSQL database dump\nCREATE TABLE public.invoices (id integer PRIMARY KEY, total numeric);\n"
           "INSERT INTO public.invoices VALUES (1, 9.5);\n")
    _restore_fails(double_factory, gzip.compress(sql.encode()), "shop-dump.sql.gz",
                   "Server health check failed, no admin exists.")


def test_a_new_install_restores_through_start_restore(double_factory: Any, spec: OpenApiSpec) -> None:
    """Immich's restore for a server not yet set up: start-restore (no admin, no authentication), then the backup
    uploaded and restored with the maintenance cookie alone; afterwards the backup's admin logs in."""
    source, source_key, _ = _seeded(double_factory, spec)
    backup = _backup(source, source_key)
    server = double_factory().start()
    with checked_client(server.url, spec) as client:
        started = client.post("/api/admin/database-backups/start-restore")
        assert started.status_code == 201
        cookie = {COOKIE: started.cookies[COOKIE]}  # the client keeps it: the maintenance routes need it
        wait_for(lambda: httpx.get(f"{server.url}/api/admin/maintenance/status", cookies=cookie, timeout=2).json()
                 == {"active": True, "action": "select_database_restore"}, "the restart into the restore flow")
        uploaded = client.post("/api/admin/database-backups/upload",
                               files={"file": (backup.name, backup.read_bytes(), "application/gzip")})
        assert uploaded.status_code == 201
        asked = client.post("/api/admin/maintenance",
                            json={"action": "restore_database", "restoreBackupFilename": f"uploaded-{backup.name}"})
        assert asked.status_code == 201
        wait_for(lambda: httpx.post(f"{server.url}/api/auth/login", timeout=2,
                                    json={"email": "admin@example.com", "password": ADMIN_PASSWORD}).status_code == 201,
                 "the backup's admin able to log in", timeout=30)


def test_a_restart_whose_start_up_fails_ends_the_process(double_factory: Any) -> None:
    """Immich's main process starts its workers again after a restart, in the same container; when the start-up fails
    there (a media folder's marker gone), the worker exits 1 and so does the main process: the double's process ends
    with exit code 1 instead of staying up without listening."""
    server, client = _fresh(double_factory)
    with contextlib.closing(client):
        token = client.post("/api/admin/maintenance", json={"action": "start"}).cookies[COOKIE]
        client.cookies.clear()
        wait_for(lambda: httpx.get(f"{server.url}/api/server/config", timeout=2).json() == {"maintenanceMode": True},
                 "the restart into maintenance mode")
        (server.media / "upload" / ".immich").unlink()
        client.cookies.set(COOKIE, token)
        ended = client.post("/api/admin/maintenance", json={"action": "end"})
        assert ended.status_code == 201
    assert server.process.proc is not None
    assert server.process.proc.wait(timeout=15) == 1, "the double stayed up after a start-up that failed"
    assert "upload/.immich" in server.log(), server.log()[-2000:]


@pytest.mark.parametrize(("release", "restore_flow", "integrity"), [
    ("v2.4.1", False, False), ("v2.7.3", True, False), ("v3.0.3", True, True),
])
def test_each_release_has_the_backup_routes_it_brought(double_factory: Any, release: str, restore_flow: bool,
                                                       integrity: bool) -> None:
    """The restore flow (database-backup routes, maintenance mode) came with Immich v2.5 and the integrity checks
    with v3: a build of an older release answers their paths 404 and refuses the integrity jobs by name, as that
    release did. Every release writes its backups by the backup-database job."""
    server = double_factory(IMMICH_DOUBLE_VERSION=release).start()
    with httpx.Client(base_url=server.url, timeout=10) as client:
        client.headers["x-api-key"] = sign_up_and_log_in(client).api_key
        client.cookies.clear()
        flow_paths = ["/api/admin/maintenance/status", "/api/admin/database-backups"]
        assert [client.get(path).status_code != 404 for path in flow_paths] == [restore_flow] * 2
        assert (client.get("/api/admin/integrity/summary").status_code != 404) is integrity
        queued = client.post("/api/jobs", json={"name": "integrity-missing-files"})
        assert queued.status_code == (204 if integrity else 400), queued.text
        assert client.post("/api/jobs", json={"name": "backup-database"}).status_code == 204
        wait_for(lambda: list((server.media / "backups").glob(f"immich-db-backup-*-{release}-pg*.sql.gz")),
                 f"the backup written by {release}")
