"""Throughput of the two upload paths, with a pass/fail gate: ``locust -f loadtests/upload.py``.

Users
  LanUploader       POST /api/assets over the LAN path (the NodePort) with the API key
  ExternalUploader  POST /api/assets through the public hostname (the edge, then the origin proxy) with an Access
                    service token and the API key
  Browser           a light mix: ping, and lookups of assets this process uploaded in this run, on both paths
  OversizeUploader  a body of MAX_BODY_BYTES + 1 through the public hostname; a 413 is the expected answer (a success)
Every upload carries fresh, unique, valid JPEG bytes made for that request; stats are grouped per path
("POST /api/assets [lan]", "POST /api/assets [external]"). Weights and sizes: --lan-weight, --external-weight,
--browse-weight, --oversize-weight, --upload-sizes.

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
"""

from __future__ import annotations

import atexit
import json
import logging
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

_REPO_ROOT = str(Path(__file__).resolve().parent.parent)
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)  # the modules next to this file are imported as the loadtests package
# httpx's transport (httpcore) probes for trio on import; under locust's gevent patching trio's import fails with an
# AttributeError (gevent removes select.epoll) instead of an ImportError. Trio cannot run here anyway: mark it absent.
sys.modules.setdefault("trio", None)  # type: ignore[arg-type]

import gevent  # noqa: E402
from locust import User, between, constant, events, task  # noqa: E402
from locust import log as locust_log  # noqa: E402
from locust.clients import HttpSession  # noqa: E402
from locust.env import Environment  # noqa: E402
from locust.runners import STATE_RUNNING, STATE_SPAWNING, LocalRunner, MasterRunner, WorkerRunner  # noqa: E402

from immich_conformance.ledger import Ledger, LedgerBusy, clean_leftovers  # noqa: E402
from immich_conformance.limits import MAX_BODY_BYTES  # noqa: E402
from immich_conformance.procs import wait_until  # noqa: E402
from immich_conformance.targets import Endpoint, Target  # noqa: E402
from immich_conformance.targets.sandbox import Sandbox  # noqa: E402
from immich_conformance.targets.spec import TargetSpec, open_target  # noqa: E402
from immich_conformance.uploads import ImageSpec, MultipartUpload  # noqa: E402
from loadtests.backoff import Backoff, path_is_down  # noqa: E402
from loadtests.early_answer import post_lazily  # noqa: E402
from loadtests.gate import Measurements, Thresholds, evaluate, measure, render, upload_name  # noqa: E402
from loadtests.ledger import LedgerBook, UploadLedger, UploadRecord  # noqa: E402
from loadtests.options import UsageError, Weights, add_arguments, check_bounds  # noqa: E402
from loadtests.preflight import check_target  # noqa: E402
from loadtests.target_settings import ConfiguredTarget, SettingsError, TargetSettings, is_loopback  # noqa: E402
from loadtests.verification import CleanupReport, check_nothing_lost, clean_up  # noqa: E402

log = logging.getLogger("loadtests.upload")

TARGET_MESSAGE = "immich-target"
TARGET_REQUEST = "immich-target-please"
LEDGER_MESSAGE = "immich-uploads"
LEDGER_REPORT_KEY = "immich_uploads"
OVERSIZE_NAME = "POST /api/assets [external, over limit]"
SETTINGS_WAIT = 30.0
OVERSIZE_TIMEOUT = 60.0
PATH_NAMES = {"lan": "the lan path", "external": "the external path", "edge": "the edge (over-limit bodies)"}
"""What a user backs off from: Immich on either path, or the edge alone (it answers over-limit bodies itself)."""


class RunState:
    """This process's share of the run."""

    def __init__(self) -> None:
        self.target: Target | None = None
        """Master or local process only: what the run is aimed at."""
        self.settings: TargetSettings | None = None
        """Every process: the endpoints and credentials the users need."""
        self.ledger = UploadLedger()
        self.disk_ledger: Ledger | None = None
        """Every process: the ledger on disk (the master's choice of file, sent to the workers with the settings)."""
        self.leftovers: dict[str, Any] = {}
        self.paths_down: dict[str, str] = {}
        self.book = LedgerBook()
        self.test_started: float | None = None
        self.cap_breaches: list[str] = []
        self.finished = False


STATE = RunState()


# --- users --------------------------------------------------------------------------------------------------------
class StreamedBody:
    """An upload's multipart body, generated while it is sent; ``len()`` gives requests the exact Content-Length."""

    def __init__(self, upload: MultipartUpload) -> None:
        self.upload = upload

    def __len__(self) -> int:
        return self.upload.content_length

    def __iter__(self) -> Iterator[bytes]:
        return self.upload.chunks()


def _settings() -> TargetSettings:
    if STATE.settings is None:  # a worker that has not heard from the master yet
        wait_until(lambda: STATE.settings, timeout=SETTINGS_WAIT, what="the target's settings from the master")
    assert STATE.settings is not None
    return STATE.settings


def _external(settings: TargetSettings) -> Endpoint:
    if settings.external is None:
        raise RuntimeError("this run has no external URL (all external weights were 0 when it started)")
    return settings.external


def _disk_ledger() -> Ledger:
    _settings()
    assert STATE.disk_ledger is not None
    return STATE.disk_ledger


def _path_state(path: str, backoff: Backoff, *, ok: bool, down: bool, detail: str) -> None:
    """Count a request on ``path`` for one user's backoff; say once per process when a path goes down or comes back."""
    if backoff.record(ok=ok, down=down) and path not in STATE.paths_down:
        STATE.paths_down[path] = detail
        log.warning("%s %s (%s): users back off, up to %.0f s between tries", PATH_NAMES[path],
                    "does not answer" if down else "answers nothing but errors", detail, backoff.cap)
    elif ok and STATE.paths_down.pop(path, None) is not None:
        log.warning("%s answers again", PATH_NAMES[path])


class ImmichUser(User):
    abstract = True
    pace = constant(0)
    """The wait between tasks while the paths answer."""

    def on_start(self) -> None:
        self.settings = _settings()
        self.backoffs: dict[str, Backoff] = {path: Backoff() for path in PATH_NAMES}

    def wait_time(self) -> float:
        return max(self.pace(), *(b.wait for b in self.backoffs.values()))

    def answered(self, path: str, status: int | None, *, ok: bool, detail: str = "") -> None:
        _path_state(path, self.backoffs[path], ok=ok, down=path_is_down(status),
                    detail=detail or f"answered {status}")

    def session(self, endpoint: Endpoint) -> HttpSession:
        session = HttpSession(base_url=endpoint.url, request_event=self.environment.events.request, user=self)
        session.headers.update(endpoint.headers)
        return session

    def upload(self, client: HttpSession, path: str, auth: dict[str, str]) -> None:
        image = ImageSpec.unique(random.choice(self.environment.parsed_options.upload_sizes))
        upload = MultipartUpload.for_image(image)
        asset_id: str | None = None
        checksum = image.sha1_base64()
        ledger = _disk_ledger()
        ledger.intend(checksum, path=path)  # before a byte is sent: a kill from here on leaves a line to clean up
        try:
            with client.post("/api/assets", data=StreamedBody(upload), name=upload_name(path), catch_response=True,
                             headers={**auth, "Content-Type": upload.content_type}) as response:
                ok = False
                if response.status_code == 201:
                    body = _json(response)
                    asset_id = body.get("id")
                    if asset_id:
                        ledger.created(checksum, asset_id)
                    ok = body.get("status") == "created" and bool(asset_id)
                    if not ok:
                        response.failure(f"201 without a created asset: {response.text[:200]}")
                else:
                    response.failure(_failure_text(response))
                self.answered(path, response.status_code, ok=ok, detail=_failure_text(response))
        finally:
            # also when the request failed or was interrupted: the clean-up looks such uploads up by checksum
            STATE.ledger.add(UploadRecord.for_image(path, image, upload.content_length, asset_id, time.time()))


class LanUploader(ImmichUser):
    """Uploads over the LAN path (the NodePort) with the API key."""

    weight = 3
    pace = constant(0)

    def on_start(self) -> None:
        super().on_start()
        self.client = self.session(self.settings.lan)
        self.auth = {"x-api-key": self.settings.api_key}

    @task
    def upload_photo(self) -> None:
        self.upload(self.client, "lan", self.auth)


class ExternalUploader(ImmichUser):
    """Uploads through the public hostname: the edge, Access (service token), the origin proxy, Immich."""

    weight = 3
    pace = constant(0)

    def on_start(self) -> None:
        super().on_start()
        self.client = self.session(_external(self.settings))
        self.auth = {**self.settings.service_token_headers, "x-api-key": self.settings.api_key}

    @task
    def upload_photo(self) -> None:
        self.upload(self.client, "external", self.auth)


class Browser(ImmichUser):
    """Pings and looks up assets uploaded in this run (by this process), on both paths."""

    weight = 1
    pace = between(0.5, 1.5)

    def on_start(self) -> None:
        super().on_start()
        self.paths = {
            "lan": (self.session(self.settings.lan), {"x-api-key": self.settings.api_key}),
            "external": (self.session(_external(self.settings)),
                         {**self.settings.service_token_headers, "x-api-key": self.settings.api_key}),
        }

    def _pick(self) -> tuple[str, HttpSession, dict[str, str]]:
        path = random.choice(("lan", "external"))
        client, auth = self.paths[path]
        return path, client, auth

    @task(1)
    def ping(self) -> None:
        path, client, auth = self._pick()
        with client.get("/api/server/ping", name=f"GET /api/server/ping [{path}]", headers=auth,
                        catch_response=True) as response:
            ok = response.status_code == 200 and _json(response).get("res") == "pong"
            if not ok:
                response.failure(_failure_text(response))
            self.answered(path, response.status_code, ok=ok, detail=_failure_text(response))

    @task(3)
    def look_up_asset(self) -> None:
        asset_id = STATE.ledger.random_asset_id()
        if asset_id is None:
            self.ping()
            return
        path, client, auth = self._pick()
        with client.get(f"/api/assets/{asset_id}", name=f"GET /api/assets/{{id}} [{path}]", headers=auth,
                        catch_response=True) as response:
            ok = response.status_code == 200 and _json(response).get("id") == asset_id
            if not ok:
                response.failure(_failure_text(response))
            self.answered(path, response.status_code, ok=ok, detail=_failure_text(response))


class UnexpectedAnswer(Exception):
    pass


def _failure_text(response: Any) -> str:
    if response.status_code == 0:
        return f"no answer: {response.error!r}"
    return f"{response.status_code}: {(response.text or '')[:200]}"


def _json(response: Any) -> dict[str, Any]:
    """The body as a JSON object; empty when it is not one (an HTML error page from a proxy)."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class OversizeUploader(ImmichUser):
    """Sends a body one byte over the limit through the public hostname; the edge must answer 413 (a success)."""

    weight = 1
    pace = between(1, 2)

    def on_start(self) -> None:
        super().on_start()
        self.endpoint = _external(self.settings)
        self.auth = {**self.settings.service_token_headers, "x-api-key": self.settings.api_key}

    @task
    def upload_too_large(self) -> None:
        upload = MultipartUpload.with_total_size(MAX_BODY_BYTES + 1)
        headers = {**self.endpoint.headers, **self.auth, **upload.headers()}
        status: int | None = None
        with self.environment.events.request.measure("POST", OVERSIZE_NAME) as meta:
            answer = post_lazily(self.endpoint.url, "/api/assets", headers, upload.chunks(), timeout=OVERSIZE_TIMEOUT)
            status = answer.status
            meta["context"] = {"body_bytes_sent": answer.body_bytes_sent}
            if answer.status != 413:
                raise UnexpectedAnswer(f"a {MAX_BODY_BYTES + 1}-byte body was answered {answer.status} "
                                       f"({answer.detail}), not 413")
        # (an OSError from post_lazily is recorded as the request's failure by measure(); status stays None)
        error = meta.get("exception")
        self.answered("edge", status, ok=error is None, detail=repr(error))


USER_CLASSES: dict[str, type[ImmichUser]] = {
    "lan": LanUploader, "external": ExternalUploader, "browse": Browser, "oversize": OversizeUploader,
}


# --- start: arguments, bounds, target -------------------------------------------------------------------------------
@events.init_command_line_parser.add_listener
def _on_parser(parser: Any, **_: Any) -> None:
    add_arguments(parser)


def _refuse(message: str, code: int = 2) -> NoReturn:
    sys.stderr.write(f"loadtests/upload.py: {message}\n")
    sys.exit(code)


def _close_target() -> None:
    target, STATE.target = STATE.target, None
    if target is not None:
        target.close()


@events.init.add_listener
def _on_init(environment: Environment, runner: Any, web_ui: Any = None, **_: Any) -> None:
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request of the checks would drown the output
    if isinstance(runner, WorkerRunner):
        runner.register_message(TARGET_MESSAGE, _receive_settings)
        runner.send_message(TARGET_REQUEST)  # the master answers once its target is up (and on every test start)
        return
    options = environment.parsed_options
    try:
        check_bounds(options)
    except UsageError as exc:
        _stop_before_start(environment, str(exc), code=2)
    weights = Weights.from_options(options)
    for key, user_class in USER_CLASSES.items():
        user_class.weight = getattr(weights, key)
    environment.user_classes = [c for c in environment.user_classes if c.weight > 0 or c.fixed_count > 0]
    if not environment.user_classes:
        _stop_before_start(environment, "no user class left to run: every selected class has weight 0", code=2)
    if isinstance(runner, MasterRunner):
        runner.register_message(LEDGER_MESSAGE, _receive_uploads)
        runner.register_message(TARGET_REQUEST, _send_settings)
        if not is_loopback(f"http://{options.master_bind_host}"):
            log.warning("workers receive the target's API key and service token from the master: it listens on %s; "
                        "bind it to loopback or a trusted network (--master-bind-host)", options.master_bind_host)
    _start_target(environment, weights)
    _get_ready(environment)
    if web_ui is not None:
        _cap_web_ui(environment, web_ui, options.max_users)
    gevent.spawn(_watch_bounds, environment)


def _start_target(environment: Environment, weights: Weights) -> None:
    options = environment.parsed_options
    if environment.host:
        try:
            target: Target = ConfiguredTarget.from_environment(environment.host, needs_external=weights.needs_external)
        except SettingsError as exc:
            _stop_before_start(environment, str(exc), code=2)
        STATE.target = target
    else:
        log.info("no --host: starting the embedded sandbox")
        atexit.register(_close_target)
        try:
            sandbox = open_target(TargetSpec(keep=options.keep_sandbox), lambda m: log.info("[sandbox] %s", m))
        except Exception as exc:  # noqa: BLE001 - reported without a traceback; the sandbox has cleaned up
            _stop_before_start(environment, f"the embedded sandbox did not start: {exc}")
        assert isinstance(sandbox, Sandbox)
        STATE.target = sandbox
        environment.host = sandbox.lan.url
        log.info("sandbox work folder: %s (%s at the end)", sandbox.workdir, "kept" if sandbox.keep else "removed")
    STATE.settings = TargetSettings.from_target(STATE.target, external=weights.needs_external)
    if isinstance(STATE.target, Sandbox) and not all(is_loopback(u) for u in STATE.settings.urls):
        _stop_before_start(environment, f"the sandbox's endpoints are not on loopback: {STATE.settings.urls}")
    log.info("load test target: %s (%s)", STATE.target.name, STATE.settings.describe())


def _stop_before_start(environment: Environment, message: str, code: int = 1) -> NoReturn:
    """Nothing has run yet: say what failed, write the summary, stop the sandbox, exit with ``code``."""
    _write_summary(environment, {"verdict": "failed", "passed": False, "stage": "before the run", "broken": [message],
                                 "requests": 0})
    if STATE.disk_ledger is not None:
        STATE.disk_ledger.unlock()
    _close_target()
    _refuse(message, code=code)


def _get_ready(environment: Environment) -> None:
    """Preflight, then the ledger: earlier runs' leftovers on this target deleted before the first user starts."""
    assert STATE.target is not None and STATE.settings is not None
    problems = check_target(STATE.settings)
    if problems:
        _stop_before_start(environment, "the target is not ready, no user was started:\n  - " + "\n  - ".join(problems))
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
        _stop_before_start(environment, str(exc))
    except OSError as exc:
        _stop_before_start(environment, f"the ledger {path} cannot be written ({exc.strerror}): give --ledger a "
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
        _stop_before_start(environment, report.describe(ledger))
    if report.found:
        ledger.compact()


def _settings_message() -> dict[str, Any]:
    assert STATE.settings is not None and STATE.disk_ledger is not None
    return {**STATE.settings.to_message(),
            "ledger": {"path": str(STATE.disk_ledger.path), "target": STATE.disk_ledger.target_id}}


def _receive_settings(environment: Environment, msg: Any, **_: Any) -> None:
    ledger = msg.data["ledger"]
    STATE.disk_ledger = Ledger(Path(ledger["path"]), ledger["target"])  # before the settings: users wait for those
    STATE.settings = TargetSettings.from_message(msg.data)


def _receive_uploads(environment: Environment, msg: Any, **_: Any) -> None:
    STATE.book.absorb(msg.node_id, msg.data)


def _cap_web_ui(environment: Environment, web_ui: Any, max_users: int) -> None:
    from flask import jsonify, request

    @web_ui.app.before_request
    def refuse_over_cap() -> Any:
        if request.method == "POST" and request.path.endswith("/swarm"):
            users = request.form.get("user_count", "")
            if users.isdigit() and int(users) > max_users:
                return jsonify({"success": False, "host": environment.host,
                                "message": f"{users} users is more than the cap of {max_users} (--max-users)"})
        return None


def _watch_bounds(environment: Environment) -> None:
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


# --- during the run: settings out to workers, upload records back ----------------------------------------------------
@events.test_start.add_listener
def _on_test_start(environment: Environment, **_: Any) -> None:
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        return
    STATE.test_started = time.monotonic()
    if isinstance(runner, MasterRunner) and STATE.settings is not None:
        runner.send_message(TARGET_MESSAGE, _settings_message())


def _send_settings(environment: Environment, msg: Any, **_: Any) -> None:
    """A worker asks (when it starts); not answered while the target is still starting: test_start sends them."""
    if STATE.settings is not None and STATE.disk_ledger is not None:
        environment.runner.send_message(TARGET_MESSAGE, _settings_message(), client_id=msg.node_id)


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
        _judge(environment, STATE.target)
    except Exception as exc:  # noqa: BLE001 - the gate must fail, not crash, and the target must still stop
        message = f"the checks after the run failed: {type(exc).__name__}: {exc}"
        log.debug("the checks after the run failed", exc_info=True)  # the traceback with --loglevel DEBUG
        print(f"GATE FAILED: {message}", flush=True)
        _write_summary(environment, {"verdict": "failed", "passed": False, "stage": "after the run",
                                     "broken": [message], "leftovers": STATE.leftovers})
        environment.process_exit_code = 1
    finally:
        if STATE.disk_ledger is not None:
            STATE.disk_ledger.unlock()
        _close_target()


def _write_summary(environment: Environment, document: dict[str, Any]) -> None:
    path = getattr(environment.parsed_options, "summary_json", "")
    if not path:
        return
    try:
        Path(path).write_text(json.dumps(document, indent=2))
    except OSError as exc:
        log.error("the summary could not be written to %s: %s", path, exc.strerror)


def _judge(environment: Environment, target: Target) -> None:
    options = environment.parsed_options
    weights = Weights.from_options(options)
    thresholds = Thresholds.from_options(options)
    runner = environment.runner
    figures: Measurements = measure(runner.stats, STATE.book, weights.upload_paths, OVERSIZE_NAME)
    figures.incomplete_sources = STATE.book.incomplete_sources()
    figures.problems = list(STATE.cap_breaches)
    if runner.exceptions:
        count = sum(e["count"] for e in runner.exceptions.values())
        figures.problems.append(f"{count} errors raised inside users (tracebacks above)")
    if locust_log.unhandled_greenlet_exception:
        figures.problems.append("an event handler or a greenlet failed (traceback above)")
    failed_uploads = sum(p.failures for p in figures.paths.values())
    if failed_uploads and (problem := target.storage_problem()):  # Immich says why only in its log: a 500
        figures.problems.insert(0, f"{problem} ({failed_uploads} uploads failed)")
    created, unconfirmed = STATE.book.created(), STATE.book.unconfirmed()
    print(f"\nchecking {len(created)} accepted uploads, then deleting every upload of the run ...", flush=True)
    client = target.lan.client(api_key=target.api_key)
    try:
        figures.loss, present = check_nothing_lost(client, target, created)
        if figures.loss.unreachable:
            figures.cleanup = CleanupReport(unreachable=figures.loss.unreachable, failures=[
                f"nothing deleted: the target stopped answering ({figures.loss.unreachable})"])
        else:
            figures.cleanup = clean_up(client, present, unconfirmed)
    finally:
        client.close()
    figures.leftovers = dict(STATE.leftovers)
    ledger = STATE.disk_ledger
    if ledger is not None:
        ledger.deleted(figures.cleanup.deleted_ids, figures.cleanup.stray_checksums)
        ledger.absent(figures.cleanup.absent)
        figures.leftovers["remaining"] = len(ledger.leftovers())
        ledger.compact()
    broken = evaluate(figures, thresholds)
    print(render(figures, thresholds, broken), flush=True)
    _write_summary(environment, {"stage": "after the run", **figures.to_json(thresholds, broken)})
    environment.process_exit_code = 1 if broken else 0
