"""Immich logs each request (method, URL with its query string, status) at its debug log level only, and only those
its guard let in; the double does the same, so that a check reading the log works with the real server under the
same settings."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from double_harness import sign_up_and_log_in

from immich_conformance.log_colours import without_colours
from immich_conformance.procs import wait_until


@pytest.mark.parametrize(("level", "logged"), [(None, False), ("log", False), ("warn", False), ("debug", True),
                                                ("verbose", True)])
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


@pytest.mark.parametrize("level", ["chatty", "DEBUG", "Log"])
def test_an_unknown_log_level_is_refused(double_factory: Any, level: str) -> None:
    """As Immich: its levels in lower case only, anything else ends the start with exit code 1."""
    server = double_factory(IMMICH_LOG_LEVEL=level)
    assert server.run_until_exit() == 1
    assert f"IMMICH_LOG_LEVEL={level!r} is not a log level: verbose, debug, log, warn, error, fatal" in \
        server.process.log_tail()


def test_only_requests_past_the_guard_are_logged_with_their_path(double_factory: Any) -> None:
    """At debug, Immich logs a request's path only once its guard let it in: a 401 or 403 leaves an
    ``HttpException`` line without the path, and non-API paths (the web app) leave nothing."""
    server = double_factory(IMMICH_LOG_LEVEL="debug").start()
    with httpx.Client(base_url=server.url, timeout=10) as client:
        account = sign_up_and_log_in(client)
        narrow = client.post("/api/api-keys", json={"name": "narrow", "permissions": ["asset.read"]},
                             headers={"Authorization": f"Bearer {account.access_token}"}).json()["secret"]
        client.cookies.clear()  # the login's cookie would authenticate every request below
        marks = {name: f"{name}-{uuid.uuid4().hex}" for name in ("served", "anonymous", "bad-key", "forbidden",
                                                                 "web", "last")}
        answers = {
            "served": client.get(f"/api/users/me?{marks['served']}=1", headers={"x-api-key": account.api_key}),
            "anonymous": client.get(f"/api/users/me?{marks['anonymous']}=1"),
            "bad-key": client.get(f"/api/users/me?{marks['bad-key']}=1", headers={"x-api-key": "wrong"}),
            "forbidden": client.get(f"/api/users/me?{marks['forbidden']}=1", headers={"x-api-key": narrow}),
            "web": client.get(f"/photos?{marks['web']}=1"),
            "last": client.get(f"/api/server/ping?{marks['last']}=1"),
        }
    assert {k: r.status_code for k, r in answers.items()} == {"served": 200, "anonymous": 401, "bad-key": 401,
                                                              "forbidden": 403, "web": 200, "last": 200}
    log = wait_until(lambda: marks["last"] in (text := server.log()) and text, timeout=10,
                     what="the last request's line")
    assert f"GET /api/users/me?{marks['served']}=1 200" in log
    for name in ("anonymous", "bad-key", "forbidden", "web"):
        assert marks[name] not in log, f"the {name} request's path is in the log"
    assert 'HttpException(401): {"message":"Authentication required","error":"Unauthorized","statusCode":401}' in log
    assert 'HttpException(401): {"message":"Invalid API key"' in log
    assert 'HttpException(403): {"message":"Missing required permission: user.read"' in log


@pytest.mark.parametrize(("no_color", "coloured"), [(None, True), ("", True), ("1", False)])
def test_the_log_is_in_nests_colours_unless_no_color_is_set(double_factory: Any, monkeypatch: pytest.MonkeyPatch,
                                                             no_color: str | None, coloured: bool) -> None:
    """As Immich's logger: green for LOG lines around the prefix, the level and the message, the context in yellow;
    none at all when NO_COLOR is set to something."""
    monkeypatch.delenv("NO_COLOR", raising=False)
    server = double_factory(**({"NO_COLOR": no_color} if no_color is not None else {})).start()
    raw = server.raw_log()
    started = next(line for line in raw.splitlines() if "Immich Server is listening" in line)
    if coloured:
        assert started.startswith("\x1b[32m[Nest] "), repr(started)
        assert "\x1b[32m    LOG\x1b[39m \x1b[33m[Bootstrap] \x1b[39m\x1b[32mImmich Server is listening" in started, \
            repr(started)
    else:
        assert "\x1b" not in raw, repr(raw[:300])
    assert re.match(r"\[Nest\] \d+  - \d\d/\d\d/\d{4}, \d{1,2}:\d\d:\d\d [AP]M     LOG \[Bootstrap\] Immich Server is "
                    r"listening on ", without_colours(started)), repr(started)
