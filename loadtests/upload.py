"""Throughput of the two upload paths, with a pass/fail gate: ``locust -f loadtests/upload.py``.

Users
  LanUploader       POST /api/assets over the LAN path (the NodePort) with the API key
  ExternalUploader  POST /api/assets through the public hostname (the edge, then the origin proxy) with an Access
                    service token and the API key
  Browser           a light mix: ping, and lookups of assets this process uploaded in this run, on both paths
  OversizeUploader  a body of MAX_BODY_BYTES + 1 through the public hostname; a 413 is the expected answer (a success)
Every upload carries fresh, unique, valid JPEG bytes made for that request; stats are grouped per path
("POST /api/assets [lan]", "POST /api/assets [external]"). Weights and sizes: --lan-weight, --external-weight,
--browse-weight, --oversize-weight, --upload-sizes. Each option is also read from LOCUST_ and its name in capitals
(LOCUST_MIN_UPLOADS_PER_S) and from locust.conf, as locust's own are.

Target
  No --host: the embedded sandbox (the same one the conformance suite uses) is started when locust starts, and
  stopped when it quits (also on Ctrl-C or a failure). With --host: a cluster or live deployment described by the
  environment (loadtests/target_settings.py; a run with --host lists any variable that is missing).

Distributed (--master / --worker, or --processes N)
  Only the master (or a local run) starts the sandbox or reads the target's environment. It sends the endpoints and
  credentials to the workers as a custom message ("immich-target"): in answer to a worker's request when the worker
  starts ("immich-target-please"), and to all workers when a test starts (before the spawn messages, on the same
  ordered channel); a user that starts before its worker has them waits up to 30 s. Workers send back their upload
  records with their stats reports and, when their users stop, a final batch ("immich-uploads"); the master checks
  them all and notices a worker whose final batch did not arrive.

Before the first user (on the master or the local process)
  Preflight: both paths answer, the API key works (and may upload), the edge accepts the service token; otherwise
  the run stops with one message saying what failed and how to fix it (exit code 1). Then the ledger (--ledger) is
  read: uploads an earlier run against the same target could not delete (it was killed, or the target was down) are
  looked up by checksum and deleted, and their count printed.

During the run
  Every upload is written to the ledger (its checksum) before it starts, and its id once answered. A user whose
  requests on a path get no answer from Immich (connection refused, 502/503/504, 52x), or only errors 10 times in a
  row, waits before its next try, doubling from 0.25 s up to 5 s (loadtests/backoff.py), so a dead target gets a few
  requests a second, not hundreds.

After the run (on the master or the local process)
  Every asset answered 201 is checked (GET /api/assets/{id}: checksum; the file on the NAS when it can be read), the
  count of lost or corrupt assets is printed, then every uploaded asset is deleted. The gate prints all measured
  values and sets the exit code: 0 when every threshold holds, 1 when one is broken (it says which). Thresholds:
  --max-failure-ratio, --max-upload-p95-ms, --min-uploads-per-s, --min-upload-mb-per-s (per upload path); every
  over-limit body must get its 413 and nothing may be lost. --summary-json PATH writes the figures and the verdict
  (also when the preflight stops the run or the target died: then "N uploads verified, M could not be verified").
  What could not be deleted stays in the ledger for the next run.

Bounds
  A headless run needs -t (at most --max-run-time); -u may not exceed --max-users (web UI runs too); requests go to
  loopback (sandbox) or the target's own URLs only.

Where each part is
  This file holds locust's event listeners, in the order a run meets them. The users are in ``users.py``; the
  process's share of the run in ``run_state.py``; the start (target, preflight, ledger, bounds) in ``startup.py``; the
  messages between master and workers in ``workers.py``; the checks and the gate after the run in ``after_run.py``
  (the thresholds and figures in ``gate.py``, the loss check and clean-up in ``verification.py``).
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

_REPO_ROOT = str(Path(__file__).resolve().parent.parent)
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)  # the modules next to this file are imported as the loadtests package
# httpx's transport (httpcore) probes for trio on import; under locust's gevent patching trio's import fails with an
# AttributeError (gevent removes select.epoll) instead of an ImportError. Trio cannot run here anyway: mark it absent.
sys.modules.setdefault("trio", None)  # type: ignore[arg-type]

import gevent  # noqa: E402
from locust import events  # noqa: E402
from locust.env import Environment  # noqa: E402
from locust.runners import LocalRunner, MasterRunner, WorkerRunner  # noqa: E402

from loadtests.after_run import judge, write_summary  # noqa: E402
from loadtests.options import UsageError, Weights, add_arguments, check_bounds  # noqa: E402
from loadtests.run_state import STATE  # noqa: E402
from loadtests.startup import (  # noqa: E402
    cap_web_ui,
    close_target,
    get_ready,
    start_target,
    stop_before_start,
    watch_bounds,
)
from loadtests.target_settings import is_loopback  # noqa: E402
from loadtests.users import USER_CLASSES, Browser, ExternalUploader, LanUploader, OversizeUploader  # noqa: E402, F401
from loadtests.workers import (  # noqa: E402
    LEDGER_MESSAGE,
    LEDGER_REPORT_KEY,
    TARGET_MESSAGE,
    TARGET_REQUEST,
    receive_settings,
    receive_uploads,
    send_settings,
    settings_message,
)

log = logging.getLogger("loadtests.upload")


# --- start: arguments, bounds, target -------------------------------------------------------------------------------
@events.init_command_line_parser.add_listener
def _on_parser(parser: Any, **_: Any) -> None:
    add_arguments(parser)


@events.init.add_listener
def _on_init(environment: Environment, runner: Any, web_ui: Any = None, **_: Any) -> None:
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request of the checks would drown the output
    if isinstance(runner, WorkerRunner):
        runner.register_message(TARGET_MESSAGE, receive_settings)
        runner.send_message(TARGET_REQUEST)  # the master answers once its target is up (and on every test start)
        return
    options = environment.parsed_options
    try:
        check_bounds(options)
    except UsageError as exc:
        stop_before_start(environment, str(exc), code=2)
    weights = Weights.from_options(options)
    for key, user_class in USER_CLASSES.items():
        user_class.weight = getattr(weights, key)
    environment.user_classes = [c for c in environment.user_classes if c.weight > 0 or c.fixed_count > 0]
    if not environment.user_classes:
        stop_before_start(environment, "no user class left to run: every selected class has weight 0", code=2)
    if isinstance(runner, MasterRunner):
        runner.register_message(LEDGER_MESSAGE, receive_uploads)
        runner.register_message(TARGET_REQUEST, send_settings)
        if not is_loopback(f"http://{options.master_bind_host}"):
            log.warning("workers receive the target's API key and service token from the master: it listens on %s; "
                        "bind it to loopback or a trusted network (--master-bind-host)", options.master_bind_host)
    start_target(environment, weights)
    get_ready(environment)
    if web_ui is not None:
        cap_web_ui(environment, web_ui, options.max_users)
    gevent.spawn(watch_bounds, environment)


# --- during the run: settings out to workers, upload records back ----------------------------------------------------
@events.test_start.add_listener
def _on_test_start(environment: Environment, **_: Any) -> None:
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        return
    STATE.test_started = time.monotonic()
    if isinstance(runner, MasterRunner) and STATE.settings is not None:
        runner.send_message(TARGET_MESSAGE, settings_message())


@events.report_to_master.add_listener
def _on_report_to_master(client_id: str, data: dict[str, Any], **_: Any) -> None:
    data[LEDGER_REPORT_KEY] = STATE.ledger.ship(final=False)


@events.worker_report.add_listener
def _on_worker_report(client_id: str, data: dict[str, Any], **_: Any) -> None:
    if LEDGER_REPORT_KEY in data:
        STATE.book.absorb(client_id, data[LEDGER_REPORT_KEY])


@events.test_stop.add_listener
def _on_test_stop(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        environment.runner.send_message(LEDGER_MESSAGE, STATE.ledger.ship(final=True))



# --- end: nothing lost, clean-up, gate, teardown ------------------------------------------------------------------
@events.quitting.add_listener
def _on_quitting(environment: Environment, **_: Any) -> None:
    runner = environment.runner
    if isinstance(runner, WorkerRunner) or STATE.target is None or STATE.finished:
        return
    STATE.finished = True
    try:
        if isinstance(runner, LocalRunner):
            runner.stop()  # Ctrl-C arrives here with users still running
        STATE.book.absorb("local", STATE.ledger.ship(final=True))
        judge(environment, STATE.target)
    except Exception as exc:  # noqa: BLE001 - the gate must fail, not crash, and the target must still stop
        message = f"the checks after the run failed: {type(exc).__name__}: {exc}"
        log.debug("the checks after the run failed", exc_info=True)  # the traceback with --loglevel DEBUG
        print(f"GATE FAILED: {message}", flush=True)
        write_summary(environment, {"verdict": "failed", "passed": False, "stage": "after the run",
                                     "broken": [message], "leftovers": STATE.leftovers})
        environment.process_exit_code = 1
    finally:
        if STATE.disk_ledger is not None:
            STATE.disk_ledger.unlock()
        close_target()
