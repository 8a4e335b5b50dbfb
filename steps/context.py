"""Per-scenario context, clients, and the record of every asset the suite made (deleted at the end)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from immich_conformance.immich_client import ImmichClient
from immich_conformance.targets import LogMarks, Target
from immich_conformance.uploads import MultipartUpload


@dataclass
class ScenarioContext:
    """What one scenario has done and seen so far."""

    marks: LogMarks = field(default_factory=dict)
    marker: str = field(default_factory=lambda: f"conformance-probe-{uuid.uuid4().hex}")
    response: httpx.Response | None = None
    error: Exception | None = None
    upload: MultipartUpload | None = None
    first: dict[str, Any] = field(default_factory=dict)
    nas_before: set = field(default_factory=set)
    outcome: Any = None


@pytest.fixture
def ctx(target: Target) -> ScenarioContext:
    return ScenarioContext(marks=target.log_marks())


class AssetLedger:
    """Every asset id the suite was told about; all of them are deleted when the session ends."""

    def __init__(self) -> None:
        self.ids: set[str] = set()

    def record(self, response: httpx.Response) -> None:
        if response.status_code in (200, 201):
            asset_id = response.json().get("id")
            if asset_id:
                self.ids.add(asset_id)


@pytest.fixture(scope="session")
def ledger(target: Target) -> Iterator[AssetLedger]:
    ledger = AssetLedger()
    yield ledger
    if ledger.ids:
        client = target.lan.client(target.api_key)
        try:
            response = client.delete_assets(sorted(ledger.ids), force=True)
            assert response.status_code == 204, f"deleting the suite's assets answered {response.status_code}"
        finally:
            client.close()


def _client(endpoint_client: ImmichClient) -> Iterator[ImmichClient]:
    yield endpoint_client
    endpoint_client.close()


@pytest.fixture
def lan(target: Target) -> Iterator[ImmichClient]:
    """The LAN path with the suite's API key."""
    yield from _client(target.lan.client(target.api_key))


@pytest.fixture
def external(target: Target) -> Iterator[ImmichClient]:
    """The public hostname with the suite's Access service token and API key."""
    yield from _client(target.external.client(target.api_key, **target.service_token_headers))
