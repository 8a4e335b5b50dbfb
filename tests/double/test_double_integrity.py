"""Immich's integrity checks in the double (v3.0.3): the three jobs in the ``integrityCheck`` queue find a missing
original, an altered one and an untracked file; the summary counts them and the report pages them newest first.
The summary is checked against the OpenAPI document; the report as Immich sends it (UUIDv7 ids, which the document's
UUIDv4 pattern refuses, and three fields it does not list)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
from double_harness import checked_client, sign_up_and_log_in, upload_form

from immich_conformance.backups.integrity import integrity_summary
from immich_conformance.double.spec_check import OpenApiSpec, load_spec


def test_the_checks_name_a_missing_an_altered_and_an_untracked_file(double_factory: Any, spec: OpenApiSpec) -> None:
    server = double_factory().start()
    with checked_client(server.url, spec) as client:
        key = sign_up_and_log_in(client).api_key
        client.cookies.clear()
        client.headers["x-api-key"] = key
        paths = []
        for i in range(4):
            asset_id = client.post("/api/assets", **upload_form(os.urandom(3_000 + i), name=f"p{i}.jpg")).json()["id"]
            paths.append(Path(client.get(f"/api/assets/{asset_id}").json()["originalPath"]))
        assert client.get("/api/admin/integrity/summary").json() == {"checksum_mismatch": 0, "missing_file": 0,
                                                                    "untracked_file": 0}
    paths[0].unlink()
    paths[1].write_bytes(b"not the uploaded bytes")
    stray = server.media / "upload" / "stray.jpg"
    stray.write_bytes(b"left behind")
    with httpx.Client(base_url=server.url, headers={"x-api-key": key}, timeout=10) as client:
        found = integrity_summary(client, timeout=30)
        assert found.counts == {"checksum_mismatch": 1, "missing_file": 1, "untracked_file": 1}
        assert found.paths == {"missing_file": [str(paths[0])], "checksum_mismatch": [str(paths[1])],
                               "untracked_file": [str(stray)]}
        page = client.get("/api/admin/integrity/report", params={"type": "missing_file", "limit": "1"})
        body = page.json()
        problems = load_spec().problems("GET", "/api/admin/integrity/report", 200, body)
        assert problems and all("does not match" in p and "['id']" in p for p in problems), problems
        assert body["items"][0]["id"][14] == "7" and set(body["items"][0]) == {"id", "type", "path", "assetId",
                                                                             "fileAssetId", "createdAt"}
        paths[0].write_bytes(b"back")
        client.post("/api/jobs", json={"name": "integrity-missing-files-refresh"})
        again = integrity_summary(client, timeout=30)  # the refresh drops the stale report, the check finds the
        assert again.counts["missing_file"] == 0      # file back (with other bytes: now a checksum mismatch)
        assert again.counts["checksum_mismatch"] == 2


def test_the_report_pages_with_a_cursor(double_factory: Any) -> None:
    server = double_factory().start()
    with httpx.Client(base_url=server.url, timeout=10) as client:
        key = sign_up_and_log_in(client).api_key
        client.cookies.clear()
        client.headers["x-api-key"] = key
        for i in range(3):
            (server.media / "upload" / f"stray-{i}.jpg").write_bytes(b"x")
        integrity_summary(client, timeout=30)
        first = client.get("/api/admin/integrity/report", params={"type": "untracked_file", "limit": "2"}).json()
        assert len(first["items"]) == 2 and first["nextCursor"]
        rest = client.get("/api/admin/integrity/report", params={"type": "untracked_file", "limit": "2",
                                                                  "cursor": first["nextCursor"]}).json()
        assert len(rest["items"]) == 1 and "nextCursor" not in rest
        seen = {i["path"] for i in first["items"] + rest["items"]}
        assert seen == {str(server.media / "upload" / f"stray-{i}.jpg") for i in range(3)}
        bad = client.get("/api/admin/integrity/report", params={"type": "lost"})
        assert bad.status_code == 400 and bad.json()["errors"][0]["path"] == ["type"]
