"""Uploads and the NAS: what Immich reports must be on the NAS, byte for byte."""

from __future__ import annotations

import hashlib

import pytest
from pytest_bdd import given, parsers, then, when

from immich_conformance.immich_client import ImmichClient
from immich_conformance.targets import Target
from immich_conformance.upload_bodies import MultipartUpload, PhotoSpec

from .context import AssetLedger, ScenarioContext

PATHS = {"the LAN": "lan", "the public hostname": "external"}


def upload(ctx: ScenarioContext, client: ImmichClient, ledger: AssetLedger, up: MultipartUpload) -> None:
    ctx.upload = up
    ledger.intend(up)
    ctx.response = client.upload(up)
    ledger.record(up, ctx.response)


@when(parsers.parse("the suite uploads a new photo over {path}"))
def upload_new(ctx: ScenarioContext, request: pytest.FixtureRequest, ledger: AssetLedger, path: str) -> None:
    upload(ctx, request.getfixturevalue(PATHS[path]), ledger, MultipartUpload.for_photo(PhotoSpec.unique(96 * 1024)))


@given("the suite uploaded a new photo over the LAN")
def uploaded_first(ctx: ScenarioContext, lan: ImmichClient, ledger: AssetLedger, target: Target) -> None:
    upload(ctx, lan, ledger, MultipartUpload.for_photo(PhotoSpec.unique(96 * 1024)))
    assert ctx.response is not None and ctx.response.status_code == 201, ctx.response.text
    ctx.first_asset_id = ctx.response.json()["id"]
    ctx.nas_before = target.nas_upload_files()


@when("the suite uploads the same photo again over the LAN")
def upload_again(ctx: ScenarioContext, lan: ImmichClient, ledger: AssetLedger) -> None:
    assert ctx.upload is not None
    upload(ctx, lan, ledger, MultipartUpload.for_photo(ctx.upload.image))


@then("Immich reports it created")
def reported_created(ctx: ScenarioContext) -> None:
    assert ctx.response is not None and ctx.response.status_code == 201, ctx.response.text
    assert ctx.response.json()["status"] == "created"


@then("Immich reports it a duplicate of the first")
def reported_duplicate(ctx: ScenarioContext) -> None:
    assert ctx.response is not None and ctx.response.status_code == 200, ctx.response.text
    assert ctx.first_asset_id is not None, "no first upload"
    assert ctx.response.json() == {"status": "duplicate", "id": ctx.first_asset_id}


@then("the file Immich reports lies on the NAS with the same SHA-1, byte for byte")
def file_on_nas(ctx: ScenarioContext, lan: ImmichClient, target: Target) -> None:
    assert ctx.response is not None and ctx.upload is not None
    asset = lan.asset(ctx.response.json()["id"])
    assert asset.status_code == 200, asset.text
    reported = asset.json()
    assert reported["checksum"] == ctx.upload.image.sha1_base64(), "Immich reports another checksum than was sent"
    on_nas = target.nas_path(reported["originalPath"])
    assert on_nas.is_file(), f"{reported['originalPath']} is not on the NAS at {on_nas}"
    assert on_nas.stat().st_size == ctx.upload.image.size
    digest = hashlib.sha1()
    with on_nas.open("rb") as f:
        for expected in ctx.upload.image.chunks():
            actual = f.read(len(expected))
            assert actual == expected, f"{on_nas} differs from the uploaded bytes"
            digest.update(actual)
        assert f.read(1) == b"", f"{on_nas} is longer than the upload"
    assert digest.digest() == ctx.upload.image.sha1()


@then("no new file appeared on the NAS")
def no_new_file(ctx: ScenarioContext, target: Target) -> None:
    # Immich writes the duplicate's bytes to upload/ and removes them in a background job after its 200.
    target.wait_no_new_upload_files(ctx.nas_before, "the duplicate's received copy removed from the NAS")
