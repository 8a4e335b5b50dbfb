"""Per-scenario context, clients, and the record of every asset the suite made (deleted at the end)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from immich_conformance.immich_client import ImmichClient
from immich_conformance.ledger import LedgerBusy
from immich_conformance.live_updates import SocketOutcome
from immich_conformance.run_ledger import LeftoversNotCleaned, RunLedger
from immich_conformance.targets import LogMarks, Target, TargetUnsupported
from immich_conformance.upload_bodies import MultipartUpload


@dataclass(frozen=True)
class Resolution:
    """The public hostname as the suite resolved it, and which side of split-horizon DNS it did so from."""

    side: str
    """"lan" or "internet"."""
    node: str | None
    """The node's LAN address."""
    addresses: list[str]


@dataclass(frozen=True)
class Undo:
    """What a step changed on the target, and how to put it back (a no-op when it is back already)."""

    what: str
    action: Callable[[], object]


class TeardownFailed(Exception):
    """Putting back what a scenario changed failed; the message names each undo that failed."""


@dataclass
class ScenarioContext:
    """What one scenario has done and seen so far, and what it changed on the target (undone at its end)."""

    marks: LogMarks = field(default_factory=dict)
    marker: str = field(default_factory=lambda: f"conformance-probe-{uuid.uuid4().hex}")
    response: httpx.Response | None = None
    error: Exception | None = None
    upload: MultipartUpload | None = None
    first_asset_id: str | None = None
    """The id Immich gave the scenario's first upload."""
    nas_before: set[Path] = field(default_factory=set)
    """The upload files on the NAS before the step under test."""
    path: str = ""
    node_ports: dict[str, list[int]] = field(default_factory=dict)
    """Each Service's node ports."""
    restarted_at: float | None = None
    """When a restart that was not waited for began (epoch seconds)."""
    connected: bool | None = None
    """Whether a pod-to-pod connection succeeded."""
    admission_refusal: str | None = None
    """The cluster's refusal to admit a pod ("" when it would admit it)."""
    resolution: Resolution | None = None
    socket: SocketOutcome | None = None
    """How opening the live-update socket went."""
    undos: list[Undo] = field(default_factory=list)

    def on_teardown(self, what: str, action: Callable[[], object]) -> None:
        """Register how to put back what a step is about to change: run when the scenario ends, passed or failed,
        after the undos registered later. ``action`` must be harmless when there is nothing left to put back."""
        self.undos.append(Undo(what, action))

    def teardown(self) -> None:
        """Run every registered undo, the last registered first, each even when an earlier one failed. An undo the
        target cannot do (TargetUnsupported) has nothing to put back: the target could not have done the change."""
        failures = []
        while self.undos:
            undo = self.undos.pop()
            try:
                undo.action()
            except TargetUnsupported:
                continue
            except Exception as exc:  # noqa: BLE001 - every undo runs; all failures are reported together
                failures.append(f"{undo.what}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
        if failures:
            raise TeardownFailed("putting back what the scenario changed failed: " + "; ".join(failures))


@pytest.fixture
def ctx(target: Target, ledger: AssetLedger) -> Iterator[ScenarioContext]:
    """Also opens the run's ledger with the first scenario: an earlier run's leftovers go before any upload. When
    the scenario ends, whatever its steps did, what they changed on the target is put back (``on_teardown``)."""
    context = ScenarioContext(marks=target.log_marks())
    yield context
    try:
        context.teardown()
    except TeardownFailed as exc:
        pytest.fail(str(exc), pytrace=False)


AssetLedger = RunLedger
"""Every asset the suite uploads: on disk before its upload starts, deleted when the session ends."""


@pytest.fixture(scope="session")
def ledger(request: pytest.FixtureRequest, target: Target) -> Iterator[AssetLedger]:
    """The run's assets (an earlier killed run's leftovers deleted first, on a target that outlives runs); at the end
    they are deleted and their files waited for (bounded) before the target stops."""
    try:
        ledger = RunLedger.open(target, lambda message: _say(request, message))
    except (LedgerBusy, LeftoversNotCleaned) as exc:
        pytest.exit(f"--target {request.config.getoption('--target')}: {exc}", returncode=pytest.ExitCode.USAGE_ERROR)
    try:
        yield ledger
        removal = ledger.remove_all()
        assert not removal.left, removal.summary()
    finally:
        ledger.close()


def _say(request: pytest.FixtureRequest, message: str) -> None:
    """One progress line past the output capture."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        reporter.write_line(f"[{request.config.getoption('--target')}] {message}")


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
