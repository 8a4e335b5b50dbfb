"""socket.io at /api/socket.io: credentials from the handshake headers, on_server_version, refusal otherwise."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import httpx
import pytest
import socketio
from double_harness import Account, DoubleServer, upload_form

from immich_conformance.double.spec_check import OpenApiSpec
from immich_conformance.sample_media import unique_png
from immich_conformance.upload_bodies import PhotoSpec
from immich_conformance.versions import IMMICH_VERSION

Events = list[tuple[str, Any]]


async def _socket_exchange(url: str, headers: dict[str, str], *, then: Any = None) -> tuple[Events, bool]:
    client = socketio.AsyncClient(reconnection=False)
    events: Events = []
    done = asyncio.Event()

    def record(name: str) -> Any:
        def handler(*args: Any) -> None:
            events.append((name, args[0] if args else None))
            done.set()
        return handler

    for name in ("on_server_version", "error", "on_upload_success"):
        client.on(name, record(name))
    client.on("disconnect", lambda *args: (events.append(("disconnect", None)), done.set()))
    await client.connect(url, headers=headers, socketio_path="/api/socket.io", transports=["websocket"],
                         wait_timeout=5)
    await asyncio.wait_for(done.wait(), timeout=5)
    if then is not None:
        done.clear()
        await asyncio.get_running_loop().run_in_executor(None, then)
        await asyncio.wait_for(done.wait(), timeout=5)
    if not any(name == "disconnect" for name, _ in events) and events[0][0] == "error":
        done.clear()
        await asyncio.wait_for(done.wait(), timeout=5)
    if any(name == "disconnect" for name, _ in events):
        await _until(lambda: not client.connected, timeout=3)
    connected = client.connected
    await client.disconnect()
    return events, connected


async def _until(condition: Any, timeout: float) -> None:
    """Poll ``condition`` on the event loop until it holds or ``timeout`` seconds pass."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition() and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.02)


def _version() -> dict[str, Any]:
    major, minor, patch = (int(x) for x in IMMICH_VERSION.lstrip("v").split("."))
    return {"major": major, "minor": minor, "patch": patch, "prerelease": None}


@pytest.mark.parametrize("kind", ["bearer", "cookie", "api-key"])
def test_authenticated_socket_gets_the_server_version(double: DoubleServer, admin: Account, spec: OpenApiSpec,
                                                      kind: str) -> None:
    headers = {
        "bearer": {"Authorization": f"Bearer {admin.access_token}"},
        "cookie": {"Cookie": f"immich_access_token={admin.access_token}"},
        "api-key": {"x-api-key": admin.api_key},
    }[kind]
    events, connected = asyncio.run(_socket_exchange(double.url, headers))
    assert events[0] == ("on_server_version", _version())
    spec.check("GET", "/api/server/version", 200, events[0][1])  # the same DTO as GET /api/server/version
    assert connected


@pytest.mark.parametrize("headers", [{}, {"x-api-key": "wrong"}, {"Authorization": "Bearer forged"}])
def test_socket_without_valid_credentials_is_refused(double: DoubleServer, headers: dict[str, str]) -> None:
    events, connected = asyncio.run(_socket_exchange(double.url, headers))
    assert events[0] == ("error", "unauthorized")
    assert ("disconnect", None) in events
    assert not connected


def test_upload_is_announced_on_the_socket(double: DoubleServer, admin: Account, spec: OpenApiSpec) -> None:
    data = PhotoSpec.unique().content()  # a JPEG the thumbnail job can decode

    def upload() -> None:
        reply = httpx.post(f"{double.url}/api/assets", headers={"x-api-key": admin.api_key}, timeout=10,
                           **upload_form(data))
        assert reply.status_code == 201

    events, _ = asyncio.run(_socket_exchange(double.url, {"x-api-key": admin.api_key}, then=upload))
    announced = [payload for name, payload in events if name == "on_upload_success"]
    assert announced and announced[0]["ownerId"] == admin.user_id
    spec.check("GET", f"/api/assets/{announced[0]['id']}", 200, announced[0])  # an AssetResponseDto



Arrivals = list[tuple[str, Any, float]]


async def _events_during(url: str, headers: dict[str, str], action: Any, seconds: float) -> Arrivals:
    """Connect, run ``action`` (blocking), and record every ``on_upload_success`` until ``seconds`` after it:
    (name, payload, monotonic time of arrival)."""
    client = socketio.AsyncClient(reconnection=False)
    events: Arrivals = []
    client.on("on_upload_success", lambda payload: events.append(("on_upload_success", payload, time.monotonic())))
    await client.connect(url, headers=headers, socketio_path="/api/socket.io", transports=["websocket"],
                         wait_timeout=5)
    try:
        await asyncio.get_running_loop().run_in_executor(None, action)
        await asyncio.sleep(seconds)
    finally:
        await client.disconnect()
    return events


def test_the_upload_event_waits_for_thumbnails_and_skips_what_has_none(double: DoubleServer, admin: Account) -> None:
    """Immich announces an upload once its thumbnails exist (~0.35 s), never for bytes it cannot decode or for a
    hidden asset."""
    answered: dict[str, tuple[str, float]] = {}

    def upload() -> None:
        for name, data, fields in (
            ("photo", PhotoSpec.unique().content(), {}),
            ("png", unique_png(), {}),
            ("noise", os.urandom(4_000), {}),
            ("truncated", PhotoSpec.unique(20_000).content()[:-100], {}),
            ("hidden", PhotoSpec.unique().content(), {"visibility": "hidden"}),
        ):
            reply = httpx.post(f"{double.url}/api/assets", headers={"x-api-key": admin.api_key}, timeout=10,
                               **upload_form(data, name=f"{name}.png" if name == "png" else "a.jpg", **fields))
            assert reply.status_code == 201, reply.text
            answered[reply.json()["id"]] = (name, time.monotonic())

    events = asyncio.run(_events_during(double.url, {"x-api-key": admin.api_key}, upload, seconds=1.5))
    announced = {answered[payload["id"]][0]: arrived - answered[payload["id"]][1] for _, payload, arrived in events
                 if payload["id"] in answered}
    assert sorted(announced) == ["photo", "png"], announced
    assert min(announced.values()) >= 0.3, f"announced before its thumbnails could exist: {announced}"
