"""Request bodies against Cloudflare's 100 MB limit, on both paths."""

from __future__ import annotations

import httpx
import pytest
from pytest_bdd import parsers, then, when

from immich_conformance.immich_client import ImmichClient
from immich_conformance.limits import MAX_BODY_BYTES
from immich_conformance.targets import Target
from immich_conformance.upload_bodies import MultipartUpload

from .context import AssetLedger, ScenarioContext
from .upload_steps import PATHS

MIB = 1024 * 1024


def send(ctx: ScenarioContext, client: ImmichClient, ledger: AssetLedger, target: Target, up: MultipartUpload,
         *, chunked: bool = False) -> None:
    ctx.nas_before = target.nas_upload_files()
    ctx.upload = up
    ledger.intend(up)
    try:
        ctx.response = client.upload(up, chunked=chunked)
        ledger.record(up, ctx.response)
    except (httpx.RemoteProtocolError, httpx.WriteError, httpx.ReadError) as exc:
        ctx.error = exc  # the connection was cut while the body was on its way


@when(parsers.parse("the suite uploads a photo whose request body is {size:d} bytes {path}"))
def upload_exact(ctx: ScenarioContext, request: pytest.FixtureRequest, ledger: AssetLedger, target: Target,
                 size: int, path: str) -> None:
    route = PATHS[path.removeprefix("through ").removeprefix("over ")]
    if route == "external" and size > MAX_BODY_BYTES:
        target.may_send_over_limit_externally()
    send(ctx, request.getfixturevalue(route), ledger, target, MultipartUpload.with_total_size(size))


@when(parsers.parse("the suite streams a {mib:d} MB upload without announcing its size through the public hostname"))
def upload_chunked(ctx: ScenarioContext, external: ImmichClient, ledger: AssetLedger, target: Target,
                   mib: int) -> None:
    if mib * MIB > MAX_BODY_BYTES:
        target.may_send_over_limit_externally()
    send(ctx, external, ledger, target, MultipartUpload.with_total_size(mib * MIB), chunked=True)


@then("the upload is accepted")
def accepted(ctx: ScenarioContext) -> None:
    assert ctx.error is None, f"the upload failed: {ctx.error!r}"
    assert ctx.response is not None and ctx.response.status_code == 201, ctx.response.text[:300]


@then(parsers.parse("the upload is refused with {status:d}"))
def refused_with(ctx: ScenarioContext, status: int) -> None:
    assert ctx.error is None, f"expected a {status} answer, the connection failed: {ctx.error!r}"
    assert ctx.response is not None and ctx.response.status_code == status, ctx.response.text[:300]


@then("the upload is refused")
def refused(ctx: ScenarioContext) -> None:
    if ctx.error is None:
        assert ctx.response is not None and ctx.response.status_code == 413, ctx.response.text[:300]


@then("no asset and no file remain from it")
def nothing_remains(ctx: ScenarioContext, lan: ImmichClient, target: Target) -> None:
    assert ctx.upload is not None
    check = lan.bulk_upload_check({"probe": ctx.upload.image.sha1_base64()})
    assert check.status_code == 200, check.text
    [result] = check.json()["results"]
    assert result["action"] == "accept", f"Immich holds an asset with these bytes: {result}"
    target.wait_no_new_upload_files(ctx.nas_before, "nothing of the refused upload left on the NAS")
