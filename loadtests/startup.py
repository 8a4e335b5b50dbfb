"""Before the first user: the run's target started (the embedded sandbox) or described (--host), the preflight, the
ledger of earlier runs cleaned; and the bounds kept while it runs (the user cap, --max-run-time), whatever starts it."""

from __future__ import annotations

import atexit
import logging
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import gevent
from locust.env import Environment
from locust.runners import STATE_RUNNING, STATE_SPAWNING

from immich_conformance.ledger import Ledger, LedgerBusy, clean_leftovers
from immich_conformance.targets import Target
from immich_conformance.targets.sandbox import Sandbox
from immich_conformance.targets.spec import TargetSpec, open_target

from .after_run import write_summary
from .options import Weights
from .preflight import check_target
from .run_state import STATE
from .target_settings import ConfiguredTarget, SettingsError, TargetSettings, is_loopback

log = logging.getLogger("loadtests.upload")


def refuse(message: str, code: int = 2) -> NoReturn:
    sys.stderr.write(f"loadtests/upload.py: {message}\n")
    sys.exit(code)


def close_target() -> None:
    target, STATE.target = STATE.target, None
    if target is not None:
        target.close()


def start_target(environment: Environment, weights: Weights) -> None:
    options = environment.parsed_options
    if environment.host:
        try:
            target: Target = ConfiguredTarget.from_environment(environment.host, needs_external=weights.needs_external)
        except SettingsError as exc:
            stop_before_start(environment, str(exc), code=2)
        STATE.target = target
    else:
        log.info("no --host: starting the embedded sandbox")
        atexit.register(close_target)
        try:
            sandbox = open_target(TargetSpec(keep=options.keep_sandbox), lambda m: log.info("[sandbox] %s", m))
        except Exception as exc:  # noqa: BLE001 - reported without a traceback; the sandbox has cleaned up
            stop_before_start(environment, f"the embedded sandbox did not start: {exc}")
        assert isinstance(sandbox, Sandbox)
        STATE.target = sandbox
        environment.host = sandbox.lan.url
        log.info("sandbox work folder: %s (%s at the end)", sandbox.workdir, "kept" if sandbox.keep else "removed")
    STATE.settings = TargetSettings.from_target(STATE.target, external=weights.needs_external)
    if isinstance(STATE.target, Sandbox) and not all(is_loopback(u) for u in STATE.settings.urls):
        stop_before_start(environment, f"the sandbox's endpoints are not on loopback: {STATE.settings.urls}")
    log.info("load test target: %s (%s)", STATE.target.name, STATE.settings.describe())


def stop_before_start(environment: Environment, message: str, code: int = 1) -> NoReturn:
    """Nothing has run yet: say what failed, write the summary, stop the sandbox, exit with ``code``."""
    write_summary(environment, {"verdict": "failed", "passed": False, "stage": "before the run", "broken": [message],
                                 "requests": 0})
    if STATE.disk_ledger is not None:
        STATE.disk_ledger.unlock()
    close_target()
    refuse(message, code=code)


def get_ready(environment: Environment) -> None:
    """Preflight, then the ledger: earlier runs' leftovers on this target deleted before the first user starts."""
    assert STATE.target is not None and STATE.settings is not None
    problems = check_target(STATE.settings)
    if problems:
        stop_before_start(environment, "the target is not ready, no user was started:\n  - " + "\n  - ".join(problems))
    log.info("preflight passed: %s answer, the API key works%s", " and ".join(STATE.settings.urls),
             ", the edge accepts the service token" if STATE.settings.external else "")
    options = environment.parsed_options
    target_id = STATE.settings.lan.url
    if options.ledger:
        path = Path(options.ledger)
    elif isinstance(STATE.target, Sandbox):
        path = STATE.target.workdir / "ledger.jsonl"
    else:
        path = Ledger.default_path(target_id)
    ledger = Ledger(path.resolve(), target_id)
    try:
        ledger.lock()
    except LedgerBusy as exc:
        stop_before_start(environment, str(exc))
    except OSError as exc:
        stop_before_start(environment, f"the ledger {path} cannot be written ({exc.strerror}): give --ledger a "
                                        "file in a folder you can write to")
    STATE.disk_ledger = ledger
    client = STATE.target.lan.client(api_key=STATE.target.api_key)
    try:
        report = clean_leftovers(ledger, client)
    finally:
        client.close()
    log.log(logging.WARNING if report.found else logging.INFO, "%s", report.describe(ledger))
    STATE.leftovers = {"ledger": str(ledger.path), "earlier_found": report.found, "earlier_deleted": report.deleted,
                       "earlier_not_on_server": report.already_gone, "earlier_failures": report.failures}
    if report.failures:
        stop_before_start(environment, report.describe(ledger))
    if report.found:
        ledger.compact()


def cap_web_ui(environment: Environment, web_ui: Any, max_users: int) -> None:
    from flask import jsonify, request

    @web_ui.app.before_request
    def refuse_over_cap() -> Any:
        if request.method == "POST" and request.path.endswith("/swarm"):
            users = request.form.get("user_count", "")
            if users.isdigit() and int(users) > max_users:
                return jsonify({"success": False, "host": environment.host,
                                "message": f"{users} users is more than the cap of {max_users} (--max-users)"})
        return None


def watch_bounds(environment: Environment) -> None:
    """Keep a run inside its bounds whatever starts it (web UI, keyboard): the user cap and --max-run-time."""
    options = environment.parsed_options
    while not STATE.finished:
        gevent.sleep(1.0)
        runner = environment.runner
        if runner is None or runner.state not in (STATE_SPAWNING, STATE_RUNNING):
            continue
        reason = None
        if runner.user_count > options.max_users:
            reason = f"{runner.user_count} users is more than the cap of {options.max_users} (--max-users)"
            STATE.cap_breaches.append(reason)
        elif STATE.test_started is not None and time.monotonic() - STATE.test_started > options.max_run_time + 1:
            reason = f"the run reached --max-run-time ({options.max_run_time}s)"
        if reason:
            log.error("%s: stopping the test", reason)
            if options.headless:
                runner.quit()
            else:
                runner.stop()
