"""Distributed runs: the master sends the target's endpoints and credentials, and the ledger's file, to its workers
("immich-target": when a worker asks on start, "immich-target-please", and to all when a test starts); workers send
their upload records back ("immich-uploads", and with each stats report)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from locust.env import Environment

from immich_conformance.ledger import Ledger

from .run_state import STATE
from .target_settings import TargetSettings

TARGET_MESSAGE = "immich-target"
TARGET_REQUEST = "immich-target-please"
LEDGER_MESSAGE = "immich-uploads"
LEDGER_REPORT_KEY = "immich_uploads"


def settings_message() -> dict[str, Any]:
    assert STATE.settings is not None and STATE.disk_ledger is not None
    return {**STATE.settings.to_message(),
            "ledger": {"path": str(STATE.disk_ledger.path), "target": STATE.disk_ledger.target_id}}


def receive_settings(environment: Environment, msg: Any, **_: Any) -> None:
    ledger = msg.data["ledger"]
    STATE.disk_ledger = Ledger(Path(ledger["path"]), ledger["target"])  # before the settings: users wait for those
    STATE.settings = TargetSettings.from_message(msg.data)


def receive_uploads(environment: Environment, msg: Any, **_: Any) -> None:
    STATE.book.absorb(msg.node_id, msg.data)


def send_settings(environment: Environment, msg: Any, **_: Any) -> None:
    """A worker asks (when it starts); not answered while the target is still starting: test_start sends them."""
    if STATE.settings is not None and STATE.disk_ledger is not None:
        environment.runner.send_message(TARGET_MESSAGE, settings_message(), client_id=msg.node_id)
