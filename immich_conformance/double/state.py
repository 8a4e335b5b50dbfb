"""What the running double holds: its settings, database, socket.io server and background jobs.

A background job starts ``job_delay`` seconds after it is queued (Immich's jobs go through its queue and a worker:
~20 ms after the answer that queued them, at the earliest), or later when it asks to. When the server stops, jobs not
yet done are abandoned, not run: as when Immich stops, a forced delete's file then stays on disk.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from immich_conformance.double.database import Database
from immich_conformance.double.realtime import Realtime
from immich_conformance.double.settings import REAL_JOB_DELAY, Settings

log = logging.getLogger("immich.JobService")


@dataclass
class DoubleState:
    settings: Settings
    db: Database
    realtime: Realtime
    jobs: set[asyncio.Task[Any]] = field(default_factory=set)
    job_delay: float = REAL_JOB_DELAY

    def queue(self, job: Coroutine[Any, Any, Any], name: str, *, after: float = 0.0) -> None:
        """Run ``job`` in the background (Immich's job queue), ``max(after, job_delay)`` seconds from now."""
        delay = max(after, self.job_delay)
        task = asyncio.get_running_loop().create_task(self._run(job, name, delay), name=name)  # jobs.queue_of reads it
        self.jobs.add(task)
        task.add_done_callback(self.jobs.discard)
        task.add_done_callback(lambda _: job.close())  # abandoned before it started: never run (a no-op once run)

    @staticmethod
    async def _run(job: Coroutine[Any, Any, Any], name: str, delay: float) -> None:
        await asyncio.sleep(delay)
        try:
            await job
        except Exception:  # noqa: BLE001 - a failed job is logged, as Immich's queue does
            log.exception("Job %s failed", name)

    async def abandon(self) -> int:
        """Stop every background job not yet done, without running the rest of it; how many there were."""
        pending = [task for task in self.jobs if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
            log.warning("%d background job(s) left undone at shutdown", len(pending))
        return len(pending)

    async def drain(self, timeout: float = 5.0) -> None:
        if self.jobs:
            await asyncio.wait(list(self.jobs), timeout=timeout)


STATE = web.AppKey("state", DoubleState)
