"""Immich's background jobs as the double runs them: after the answer, never sooner than Immich's own delay
(IMMICH_DOUBLE_JOB_DELAY widens it), and abandoned, not finished, when the server stops."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from double_harness import DoubleServer, files_under, sign_up_and_log_in, upload_form, wait_for

WIDE = 1.5  # seconds: long enough to look at the disk between the answer and the job


@contextlib.contextmanager
def _started(double_factory: Any, delay: float) -> Iterator[tuple[DoubleServer, httpx.Client, str]]:
    server = double_factory(IMMICH_DOUBLE_JOB_DELAY=str(delay)).start()
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield server, client, sign_up_and_log_in(client).api_key


def test_a_duplicates_copy_is_on_disk_after_the_answer_then_removed(double_factory: Any) -> None:
    with _started(double_factory, WIDE) as (server, client, key):
        data = os.urandom(30_000)
        first = client.post("/api/assets", headers={"x-api-key": key}, **upload_form(data))
        assert first.status_code == 201
        upload = server.media / "upload"
        before = set(files_under(upload))
        answered = time.monotonic()
        again = client.post("/api/assets", headers={"x-api-key": key}, **upload_form(data))
        assert (again.status_code, again.json()) == (200, {"status": "duplicate", "id": first.json()["id"]})
        copies = set(files_under(upload)) - before
        assert time.monotonic() - answered < WIDE, "the check came too late to see the copy"
        assert [p.read_bytes() for p in copies] == [data], "the received copy is not on disk right after the 200"
        wait_for(lambda: set(files_under(upload)) == before, "the duplicate's copy removed by its job")
        assert time.monotonic() - answered >= WIDE * 0.9


def test_a_forced_delete_answers_at_once_and_removes_the_file_later(double_factory: Any) -> None:
    with _started(double_factory, WIDE) as (server, client, key):
        asset_id = client.post("/api/assets", headers={"x-api-key": key}, **upload_form(os.urandom(9_000))).json()["id"]
        path = Path(client.get(f"/api/assets/{asset_id}", headers={"x-api-key": key}).json()["originalPath"])
        asked = time.monotonic()
        deleted = client.request("DELETE", "/api/assets", headers={"x-api-key": key},
                                 json={"ids": [asset_id], "force": True})
        assert deleted.status_code == 204 and time.monotonic() - asked < WIDE
        assert path.is_file(), "the file went before the background job could have run"
        wait_for(lambda: not path.exists(), "the deleted original removed by its job")
        assert time.monotonic() - asked >= WIDE * 0.9


def test_a_forced_delete_pending_at_shutdown_is_left_undone(double_factory: Any) -> None:
    with _started(double_factory, 30) as (server, client, key):
        asset_id = client.post("/api/assets", headers={"x-api-key": key}, **upload_form(os.urandom(9_000))).json()["id"]
        path = Path(client.get(f"/api/assets/{asset_id}", headers={"x-api-key": key}).json()["originalPath"])
        deleted = client.request("DELETE", "/api/assets", headers={"x-api-key": key},
                                 json={"ids": [asset_id], "force": True})
        assert deleted.status_code == 204
    assert server.stop() == 0
    assert path.is_file(), "the double finished a pending delete while stopping (Immich leaves it undone)"
    assert "background job(s) left undone at shutdown" in server.log()


@pytest.mark.parametrize("value", ["0", "0.001", "-1", "soon", "nan", "61"])
def test_a_job_delay_shorter_than_immichs_or_unreadable_is_refused(double_factory: Any, value: str) -> None:
    server = double_factory(IMMICH_DOUBLE_JOB_DELAY=value)
    assert server.run_until_exit() == 2
    assert f"IMMICH_DOUBLE_JOB_DELAY={value!r} must be a number of seconds from 0.02" in server.process.log_tail()
