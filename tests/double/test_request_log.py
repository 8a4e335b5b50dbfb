"""Immich logs each request (method, URL with its query string, status) at its debug log level only; the double does
the same, so that a check reading the log works with the real server under the same settings."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from immich_conformance.procs import wait_until


@pytest.mark.parametrize(("level", "logged"), [(None, False), ("log", False), ("warn", False), ("debug", True),
                                                ("verbose", True), ("DEBUG", True)])
def test_request_lines_appear_at_debug_level_only(double_factory: Any, level: str | None, logged: bool) -> None:
    server = double_factory(**({"IMMICH_LOG_LEVEL": level} if level else {})).start()
    marker = f"marker-{uuid.uuid4().hex}"
    httpx.get(f"{server.url}/api/server/ping?{marker}=1", timeout=5)
    httpx.get(f"{server.url}/api/server/version", timeout=5)
    if logged:
        line = wait_until(lambda: next((x for x in server.log().splitlines() if marker in x), None), timeout=10,
                          what="the request line")
        assert "DEBUG [Api:LoggingInterceptor~" in line and f"GET /api/server/ping?{marker}=1 200" in line, line
    else:
        server.stop()  # the log is complete once the process has ended
        assert marker not in server.log()


def test_an_unknown_log_level_is_refused(double_factory: Any) -> None:
    server = double_factory(IMMICH_LOG_LEVEL="chatty")
    assert server.run_until_exit() == 2
    assert "IMMICH_LOG_LEVEL='chatty' is not a log level: verbose, debug, log, warn, error, fatal" in \
        server.process.log_tail()
