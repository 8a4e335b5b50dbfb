"""The suite's verdicts on what Immich does after its answer, and on what Immich saw, against a sandbox whose Immich
runs its background jobs late (IMMICH_DOUBLE_JOB_DELAY): each check waits for the real server's jobs, and fails
when what it waits for does not happen in time."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import closing

import pytest

from immich_conformance.asset_removal import remove_assets
from immich_conformance.limits import JWT_HEADER
from immich_conformance.origin_proxy import forwarded_upstream
from immich_conformance.targets.sandbox import Sandbox
from immich_conformance.token_forgery import ORIGIN_TOKENS
from immich_conformance.upload_bodies import MultipartUpload, PhotoSpec

JOB_DELAY = 1.0


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("IMMICH_DOUBLE_JOB_DELAY", str(JOB_DELAY))
        with Sandbox() as started:
            yield started


def _upload(sandbox: Sandbox, image: PhotoSpec) -> dict:
    with closing(sandbox.lan.client(sandbox.api_key)) as client:
        answer = client.upload(MultipartUpload.for_photo(image))
    assert answer.status_code in (200, 201), answer.text
    return answer.json()


def test_a_duplicates_copy_is_waited_for_not_looked_at_once(sandbox: Sandbox) -> None:
    image = PhotoSpec.unique()
    first = _upload(sandbox, image)
    before = sandbox.nas_upload_files()
    assert _upload(sandbox, image) == {"status": "duplicate", "id": first["id"]}
    assert sandbox.nas_upload_files() - before, "no copy on the NAS right after the 200: a look at once would pass"
    with pytest.raises(AssertionError, match=r"still holds 1 new file\(s\): .*/upload/"):
        sandbox.wait_no_new_upload_files(before, "the copy removed", timeout=0.1)
    sandbox.wait_no_new_upload_files(before, "the copy removed")
    assert not remove_assets(sandbox, [first["id"]]).left


def test_the_clean_up_waits_for_the_files_and_names_what_stayed(sandbox: Sandbox) -> None:
    kept = _upload(sandbox, PhotoSpec.unique())["id"]
    with closing(sandbox.lan.client(sandbox.api_key)) as client:
        path = sandbox.nas_path(client.asset(kept).json()["originalPath"])
    too_soon = remove_assets(sandbox, [kept], timeout=0.1)
    assert too_soon.left == [str(path)]
    assert "could not remove 1 of its 1 assets" in too_soon.summary() and str(path) in too_soon.summary()
    other = _upload(sandbox, PhotoSpec.unique())["id"]
    with closing(sandbox.lan.client(sandbox.api_key)) as client:
        other_path = sandbox.nas_path(client.asset(other).json()["originalPath"])
    assert not remove_assets(sandbox, [other]).left
    assert not other_path.exists() and not path.exists()


def test_the_proxy_log_tells_a_forwarded_request_from_one_it_answered(sandbox: Sandbox) -> None:
    marks = sandbox.log_marks()
    verdicts = {}
    for token in ("no Access token", "a valid Access token"):
        marker = f"conformance-probe-{uuid.uuid4().hex}"
        jwt = ORIGIN_TOKENS[token](sandbox.access_keys(), sandbox.aud)
        with closing(sandbox.origin.client(sandbox.api_key, **({JWT_HEADER: jwt} if jwt else {}))) as client:
            client.get(f"/api/users/me?{marker}=1")
        [line] = sandbox.log_lines_with("origin-proxy", marker, marks)
        verdicts[token] = forwarded_upstream(line)
    assert verdicts == {"no Access token": False, "a valid Access token": True}


def test_a_refused_request_is_not_in_immichs_log_though_it_arrived(sandbox: Sandbox) -> None:
    """Why the suite never reads a refused request's path in Immich's log: Immich logs only what its guard let in."""
    marks = sandbox.log_marks()
    refused, served = (f"conformance-probe-{uuid.uuid4().hex}" for _ in range(2))
    with closing(sandbox.lan.client(None)) as anonymous:
        assert anonymous.get(f"/api/users/me?{refused}=1").status_code == 401
    with closing(sandbox.lan.client(sandbox.api_key)) as client:
        assert client.get(f"/api/users/me?{served}=1").status_code == 200
    assert not sandbox.seen_by("immich-server", refused, marks)
    assert sandbox.seen_by("immich-server", served, marks)
