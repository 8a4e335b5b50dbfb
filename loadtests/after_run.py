"""After the run (master or local process): every accepted upload checked on the target, every upload of the run
deleted, the gate's verdict printed and written (--summary-json), and the exit code set."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from locust import log as locust_log
from locust.env import Environment

from immich_conformance.targets import Target

from .gate import Measurements, Thresholds, evaluate, measure, render
from .options import Weights
from .run_state import STATE
from .users import OVERSIZE_NAME
from .verification import CleanupReport, check_nothing_lost, clean_up

log = logging.getLogger("loadtests.upload")


def write_summary(environment: Environment, document: dict[str, Any]) -> None:
    path = getattr(environment.parsed_options, "summary_json", "")
    if not path:
        return
    try:
        Path(path).write_text(json.dumps(document, indent=2))
    except OSError as exc:
        log.error("the summary could not be written to %s: %s", path, exc.strerror)


def judge(environment: Environment, target: Target) -> None:
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
    write_summary(environment, {"stage": "after the run", **figures.to_json(thresholds, broken)})
    environment.process_exit_code = 1 if broken else 0
