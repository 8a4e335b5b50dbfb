"""Immich's database backups in the double (v3.0.3): the ``backup-database`` job writes a gzipped ``pg_dump`` of the
server's own database under Immich's name in ``<media>/backups``, keeps the newest ``keepLastAmount``, and the admin
endpoints list, download, upload and delete backups; every answer checked against the OpenAPI document."""

from __future__ import annotations

import gzip
import json
import os
import re
import time
from pathlib import Path
from typing import Any

import httpx
from double_harness import add_user, checked_client, sign_up_and_log_in, upload_form, wait_for

from immich_conformance.double.spec_check import OpenApiSpec

ROUTINE = re.compile(r"^immich-db-backup-\d{8}T\d{6}-v3\.0\.3-pg(\d+)\.(\d+)\.sql\.gz$")


def _backups(client: httpx.Client, key: str) -> list[dict[str, Any]]:
    listed = client.get("/api/admin/database-backups", headers={"x-api-key": key})
    assert listed.status_code == 200, listed.text
    return listed.json()["backups"]


def _backup_now(client: httpx.Client, key: str, before: int) -> list[dict[str, Any]]:
    queued = client.post("/api/jobs", json={"name": "backup-database"}, headers={"x-api-key": key})
    assert queued.status_code == 204, queued.text
    return wait_for(lambda: (found := _backups(client, key)) and len(found) > before and found,
                    "the backup job's file listed")


def test_the_backup_job_writes_a_gzipped_dump_named_as_immich_names_it(double_factory: Any,
                                                                      spec: OpenApiSpec) -> None:
    server = double_factory().start()
    with checked_client(server.url, spec) as client:
        key = sign_up_and_log_in(client).api_key
        client.post("/api/assets", headers={"x-api-key": key}, **upload_form(os.urandom(5_000)))
        assert _backups(client, key) == []
        backup = _backup_now(client, key, 0)[0]
        name = backup["filename"]
        assert ROUTINE.match(name), name
        path = server.media / "backups" / name
        assert path.is_file() and backup["filesize"] == path.stat().st_size and backup["timezone"]
        assert not list((server.media / "backups").glob("*.tmp")), "the temporary file was left behind"
        sql = gzip.decompress(path.read_bytes()).decode()
        assert "-- PostgreSQL database dump" in sql and "DROP TABLE IF EXISTS public.assets;" in sql
        assert "CREATE TABLE public.assets" in sql and "COPY public.assets" in sql
        version = server.db.query("SHOW server_version")[0][0].split(" ")[0]
        assert name.endswith(f"-pg{version}.sql.gz")
        downloaded = client.get(f"/api/admin/database-backups/{name}", headers={"x-api-key": key})
        assert downloaded.status_code == 200 and downloaded.content == path.read_bytes()
        assert downloaded.headers["content-type"] == "application/gzip"


def test_the_backup_job_keeps_the_newest_keep_last_amount(double_factory: Any, run_dir: Path) -> None:
    config = run_dir / f"config-{time.monotonic_ns()}.json"
    config.write_text(json.dumps({"backup": {"database": {"keepLastAmount": 1}}}))
    server = double_factory(IMMICH_CONFIG_FILE=str(config)).start()
    with httpx.Client(base_url=server.url, timeout=10) as client:
        key = sign_up_and_log_in(client).api_key
        first = _backup_now(client, key, 0)[0]["filename"]
        failed = server.media / "backups" / "immich-db-backup-20200101T000000-v3.0.3-pg16.1.sql.gz.tmp"
        failed.write_bytes(b"half")
        wait_for(lambda: time.strftime("%Y%m%dT%H%M%S") not in first, "a new second for the next name")
        queued = client.post("/api/jobs", json={"name": "backup-database"}, headers={"x-api-key": key})
        assert queued.status_code == 204
        names = wait_for(lambda: (n := [b["filename"] for b in _backups(client, key)]) and first not in n and n,
                         "the older backup removed")
        assert len(names) == 1 and names[0] > first
        assert not failed.exists(), "a failed backup's .tmp file stayed"


def test_backups_are_uploaded_listed_and_deleted_by_name(double_factory: Any, spec: OpenApiSpec) -> None:
    server = double_factory().start()
    with checked_client(server.url, spec) as client:
        key = sign_up_and_log_in(client).api_key
        data = gzip.compress(b"SELECT 1;\n")
        uploaded = client.post("/api/admin/database-backups/upload", headers={"x-api-key": key},
                               files={"file": ("mine.sql.gz", data, "application/gzip")})
        assert uploaded.status_code == 201, uploaded.text
        assert (server.media / "backups" / "uploaded-mine.sql.gz").read_bytes() == data
        assert [b["filename"] for b in _backups(client, key)] == ["uploaded-mine.sql.gz"]
        refused = client.post("/api/admin/database-backups/upload", headers={"x-api-key": key},
                              files={"file": ("notes.txt", b"x", "text/plain")})
        assert (refused.status_code, refused.json()) == (400, {"message": "Invalid backup name!"})
        bad = client.request("DELETE", "/api/admin/database-backups", headers={"x-api-key": key},
                             json={"backups": ["../etc/passwd"]})
        assert (bad.status_code, bad.json()) == (400, {"message": "Invalid backup name!"})
        for absent in ("nothing.sql.gz", "notes.txt"):  # Immich's sendFile turns every failure into 404
            gone = client.get(f"/api/admin/database-backups/{absent}", headers={"x-api-key": key})
            assert (gone.status_code, gone.json()) == (404, {"message": "Not Found"})
        deleted = client.request("DELETE", "/api/admin/database-backups", headers={"x-api-key": key},
                                 json={"backups": ["uploaded-mine.sql.gz"]})
        assert deleted.status_code == 200 and _backups(client, key) == []


def test_backups_are_for_admins_with_their_permissions(double_factory: Any, spec: OpenApiSpec) -> None:
    server = double_factory().start()
    with checked_client(server.url, spec) as client:
        admin = sign_up_and_log_in(client)
        client.cookies.clear()  # the login's session cookie would speak for the admin
        other = add_user(server.db, "not-admin@example.com")
        assert client.get("/api/admin/database-backups", headers={"x-api-key": other.api_key}).status_code == 403
        narrow = client.post("/api/api-keys", json={"name": "n", "permissions": ["backup.download"]},
                             headers={"Authorization": f"Bearer {admin.access_token}"}).json()["secret"]
        missing = client.get("/api/admin/database-backups", headers={"x-api-key": narrow})
        assert missing.json() == {"message": "Missing required permission: maintenance"}
        job = client.post("/api/jobs", json={"name": "launder"}, headers={"x-api-key": admin.api_key})
        assert job.status_code == 400 and job.json()["message"] == "Validation failed"


def test_the_backup_config_schedules_the_job(double_factory: Any, run_dir: Path) -> None:
    config = run_dir / f"config-{time.monotonic_ns()}.json"
    config.write_text(json.dumps({"backup": {"database": {"cronExpression": "*/2 * * * * *", "keepLastAmount": 2}}}))
    server = double_factory(IMMICH_CONFIG_FILE=str(config)).start()
    with httpx.Client(base_url=server.url, timeout=10) as client:
        key = sign_up_and_log_in(client).api_key
        names = wait_for(lambda: len(found := _backups(client, key)) >= 2 and found, "two scheduled backups")
        assert all(ROUTINE.match(b["filename"]) for b in names)
    off = run_dir / f"config-{time.monotonic_ns()}.json"
    off.write_text(json.dumps({"backup": {"database": {"enabled": False, "cronExpression": "* * * * * *"}}}))
    quiet = double_factory(IMMICH_CONFIG_FILE=str(off)).start()
    time.sleep(2.5)  # a window to watch, not a wait: a disabled schedule writes nothing in it
    assert os.listdir(quiet.media / "backups") == [".immich"]
