"""Immich's job queues in the double: ``GET /api/queues`` and the deprecated ``GET /api/jobs`` in v3.0.3's shape
(checked against the OpenAPI document), admin only with their permissions, and its background jobs counted as active
in their queue until they end."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from double_harness import Account, add_user

from immich_conformance.double import jobs
from immich_conformance.double.spec_check import OpenApiSpec
from immich_conformance.double.state import DoubleState


def test_queues_report_every_queue_of_immich(api: httpx.Client, admin: Account, spec: OpenApiSpec) -> None:
    queues = api.get("/api/queues", headers={"x-api-key": admin.api_key})
    assert queues.status_code == 200
    body = queues.json()
    enum = spec.document["components"]["schemas"]["QueueName"]["enum"]
    assert [q["name"] for q in body] == enum
    assert all(q["isPaused"] is False and set(q["statistics"]) == {"active", "completed", "delayed", "failed",
                                                                       "paused", "waiting"} for q in body)
    legacy = api.get("/api/jobs", headers={"Authorization": f"Bearer {admin.access_token}"})
    assert legacy.status_code == 200
    assert sorted(legacy.json()) == sorted(enum)


def test_queues_are_for_admins_with_the_permission(api: httpx.Client, admin: Account, double: Any) -> None:
    assert api.get("/api/queues").json() == {"message": "Authentication required"}
    other = add_user(double.db, "queue-reader@example.com")
    refused = api.get("/api/queues", headers={"x-api-key": other.api_key})
    assert (refused.status_code, refused.json()) == (403, {"message": "Forbidden"})
    narrow = api.post("/api/api-keys", json={"name": "narrow", "permissions": ["asset.read"]},
                      headers={"Authorization": f"Bearer {admin.access_token}"}).json()["secret"]
    for path, permission in (("/api/queues", "queue.read"), ("/api/jobs", "job.read")):
        missing = api.get(path, headers={"x-api-key": narrow})
        assert (missing.status_code, missing.json()) == (403, {"message": f"Missing required permission: {permission}"})


def test_a_running_job_is_active_in_its_queue_until_it_ends(spec: OpenApiSpec) -> None:
    async def scenario() -> None:
        st = DoubleState(settings=None, db=None, realtime=None)  # type: ignore[arg-type]
        release = asyncio.Event()
        jobs.run_job(st, "duplicateDetection", release.wait(), "AssetDetectDuplicates")
        st.queue(release.wait(), "file-delete")
        st.queue(release.wait(), "trash-event")  # a socket event: no job in Immich
        await asyncio.sleep(0)
        body = jobs.queues_body(st)
        spec.check("GET", "/api/queues", 200, body)
        active = {q["name"]: q["statistics"]["active"] for q in body if q["statistics"]["active"]}
        assert active == {"duplicateDetection": 1, "backgroundTask": 1}
        legacy = jobs.legacy_body(st)
        spec.check("GET", "/api/jobs", 200, legacy)
        assert legacy["backgroundTask"]["queueStatus"]["isActive"] is True
        release.set()
        await st.drain()
        assert all(q["statistics"]["active"] == 0 for q in jobs.queues_body(st))

    asyncio.run(scenario())


def test_an_unknown_queue_is_refused() -> None:
    async def scenario() -> None:
        st = DoubleState(settings=None, db=None, realtime=None)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="not one of Immich's queues"):
            jobs.run_job(st, "laundry", asyncio.sleep(0), "Wash")

    asyncio.run(scenario())
