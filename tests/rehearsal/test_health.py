"""The upgrade phase's health checks beyond Ready: the error lines of Immich's start-up log (in the layout of Immich's
NestJS logger, coloured as Immich and the API double write it), and the wait for the job queues."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from immich_conformance.double.app import NestFormatter
from immich_conformance.double.jobs import QUEUES, statistics
from immich_conformance.log_colours import without_colours
from immich_conformance.rehearsal.health import (
    QueuesNotDrained,
    QueuesUnreadable,
    startup_errors,
    wait_for_queues_drained,
)

WHEN = "12/04/2026, 1:02:03 PM"


def nest(level: str, context: str, message: str, pid: int = 7) -> str:
    return f"[Nest] {pid}  - {WHEN} {level:>7} [{context}] {message}"


def coloured(level: str, context: str, message: str) -> str:
    """A line as Immich's logger writes it with colours (NestJS ConsoleLogger)."""
    colour = {"LOG": 32, "WARN": 33, "ERROR": 31, "FATAL": 35}[level]
    return (f"\x1b[{colour}m[Nest] 7  - \x1b[39m{WHEN} \x1b[{colour}m{level:>7}\x1b[39m "
            f"\x1b[33m[{context}]\x1b[39m \x1b[{colour}m{message}\x1b[39m")


# A healthy v3 start: the process banner, LOG lines, and the WARN lines a working server writes.
OK_START = "\n".join([
    "Initializing Immich v3.1.0",
    "Detected CPU Cores: 2",
    "Starting api worker",
    "Starting microservices worker",
    nest("LOG", "Microservices:EventRepository", "Initialized websocket server"),
    nest("LOG", "Microservices:DatabaseRepository", "Running migrations, this may take a while"),
    nest("LOG", "Microservices:DatabaseRepository", 'Migration "1764806400000-ReleaseSchemaChange" succeeded'),
    coloured("WARN", "Microservices:PluginService", "Core plugin not found, skipping plugin load"),
    nest("LOG", "Microservices:StorageService", "Verifying system mount folder checks, current state: "
         '{"mountChecks":{"upload":true,"library":true}}'),
    nest("LOG", "Microservices:StorageService", "Successfully verified system mount folder checks"),
    coloured("WARN", "Microservices:MachineLearningRepository",
             'Machine learning request to "http://immich-machine-learning:3003" failed: fetch failed'),
    nest("WARN", "Api:AuthService", "Denied access to admin only route: /api/queues", pid=17),
    nest("LOG", "Api:Bootstrap", "Immich Server is listening on http://[::1]:2283 [v3.1.0] [production]", pid=17),
])


def test_a_healthy_start_with_its_warnings_has_no_error_lines() -> None:
    assert startup_errors(OK_START) == []
    assert startup_errors("") == []


@pytest.mark.parametrize("bad", [
    nest("ERROR", "Microservices:DatabaseRepository", 'Kysely migrations failed: error: column "visibility" of '
         'relation "asset" already exists'),
    coloured("ERROR", "Microservices:DatabaseRepository", "Kysely migrations failed: error: relation exists"),
    nest("WARN", "Microservices:DatabaseRepository", 'Migration "1764806400000-ReleaseSchemaChange" failed'),
    nest("FATAL", "Microservices:DatabaseService", "Failed to activate VectorChord extension."),
    nest("ERROR", "Api:StorageService", "Inconsistent Media Location detected: /usr/src/app/upload vs /data"),
    "Error: No vector extension found. Please install VectorChord.",
    "Error: Invalid upgrade path. For more information, see https://immich.app/errors#typeorm-upgrade",
    "microservices worker exited with code 1",
], ids=["error", "coloured-error", "migration-warn", "fatal-extension", "media-location", "bare-extension",
        "bare-upgrade-path", "worker-exit"])
def test_an_error_line_is_found_and_quoted(bad: str) -> None:
    lines = OK_START.splitlines()
    log = "\n".join([*lines[:6], bad, "    at DatabaseRepository.runMigrations (/usr/src/app/server/dist/x.js:1:2)",
                     *lines[6:]])
    found = startup_errors(log)
    assert len(found) == 1, found
    assert "\x1b" not in found[0]
    assert found[0] == startup_errors(bad)[0]


@pytest.mark.parametrize("colour", [True, False], ids=["coloured", "NO_COLOR"])
def test_the_doubles_own_error_line_is_found(colour: bool) -> None:
    record = logging.LogRecord("immich.Microservices:DatabaseRepository", logging.ERROR, __file__, 1,
                               "Kysely migrations failed: %s", ("error: boom",), None)
    line = NestFormatter(colour=colour).format(record)
    assert ("\x1b[31m" in line) is colour
    plain = without_colours(line)
    assert "  ERROR [Microservices:DatabaseRepository] Kysely migrations failed" in plain
    assert startup_errors(f"{OK_START}\n{line}") == [plain]
    ok = NestFormatter(colour=colour).format(logging.LogRecord("immich.VersionService", logging.INFO, __file__, 1,
                                                               "Version has changed: v3.0.3 -> v3.1.0", (), None))
    assert startup_errors(ok) == []


def test_each_error_line_once_in_log_order() -> None:
    a = nest("ERROR", "Microservices:JobService", "Unable to run job handler")
    b = nest("ERROR", "Microservices:DatabaseRepository", "Kysely migrations failed: x")
    assert startup_errors("\n".join([a, b, a])) == [a, b]


class FakeServer:
    """Answers GET /api/queues from a script of queue states (the last repeats)."""

    def __init__(self, states: list[dict[str, int]], status: int = 200) -> None:
        self.states = states
        self.status = status
        self.calls = 0

    def get(self, path: str, **_: Any) -> httpx.Response:
        assert path == "/api/queues"
        active = self.states[min(self.calls, len(self.states) - 1)]
        self.calls += 1
        if self.status != 200:
            return httpx.Response(self.status, json={"message": "Forbidden"})
        return httpx.Response(200, json=[{"name": q, "isPaused": False, "statistics": statistics(active.get(q, 0))}
                                         for q in QUEUES])


def test_the_wait_ends_when_the_queues_are_empty() -> None:
    server = FakeServer([{"backgroundTask": 2}, {"backgroundTask": 1, "thumbnailGeneration": 1}, {}])
    wait_for_queues_drained(server, timeout=5, interval=0.01)  # type: ignore[arg-type]
    assert server.calls == 3


def test_queues_that_do_not_drain_are_named() -> None:
    server = FakeServer([{"backgroundTask": 2, "thumbnailGeneration": 1}])
    with pytest.raises(QueuesNotDrained, match=r"did not drain within 0s: backgroundTask: 2 active; "
                                               r"thumbnailGeneration: 1 active"):
        wait_for_queues_drained(server, timeout=0.2, interval=0.05)  # type: ignore[arg-type]
    assert server.calls >= 2


def test_a_refused_queue_request_ends_the_wait_at_once() -> None:
    server = FakeServer([{}], status=403)
    with pytest.raises(QueuesUnreadable, match="answered 403"):
        wait_for_queues_drained(server, timeout=30, interval=0.05)  # type: ignore[arg-type]
    assert server.calls == 1
