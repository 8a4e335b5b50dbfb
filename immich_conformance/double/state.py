"""What the running double holds: its settings, database, socket.io server and background jobs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from immich_conformance.double.database import Database
from immich_conformance.double.realtime import Realtime
from immich_conformance.double.settings import Settings

log = logging.getLogger("immich.JobService")


@dataclass
class DoubleState:
    settings: Settings
    db: Database
    realtime: Realtime
    jobs: set[asyncio.Task[Any]] = field(default_factory=set)

    def queue(self, job: Coroutine[Any, Any, Any], name: str) -> None:
        """Run ``job`` in the background (Immich's job queue), after the current response."""
        task = asyncio.get_running_loop().create_task(self._run(job, name))
        self.jobs.add(task)
        task.add_done_callback(self.jobs.discard)

    @staticmethod
    async def _run(job: Coroutine[Any, Any, Any], name: str) -> None:
        try:
            await job
        except Exception:  # noqa: BLE001 - a failed job is logged, as Immich's queue does
            log.exception("Job %s failed", name)

    async def drain(self, timeout: float = 5.0) -> None:
        if self.jobs:
            await asyncio.wait(list(self.jobs), timeout=timeout)


STATE = web.AppKey("state", DoubleState)
