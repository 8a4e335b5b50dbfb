"""Immich's job queues as the double has them: its background jobs, counted per queue, and the two endpoints that
report them (``GET /api/queues`` and the deprecated ``GET /api/jobs``; admin only, ``queue.read`` / ``job.read``).

A background job of the double runs as an asyncio task named after its job (``DoubleState.queue``). ``run_job``
starts one in a named Immich queue; until it ends, the endpoints count it as ``active`` in that queue, so a client
that waits for the queues to drain waits for it. Jobs queued by name alone (``DoubleState.queue(job, name)``) are
placed by ``JOB_QUEUES``, any other name in ``backgroundTask``; a name mapped to no queue (a socket event, which
Immich sends without a job) is not counted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Coroutine
from typing import Any

from aiohttp import web

from immich_conformance.double.http_api import caller, json_response, state
from immich_conformance.double.state import DoubleState

# Immich v3.0.3's QueueName, in its order.
QUEUES: tuple[str, ...] = (
    "thumbnailGeneration", "metadataExtraction", "videoConversion", "faceDetection", "facialRecognition",
    "smartSearch", "duplicateDetection", "backgroundTask", "storageTemplateMigration", "migration", "search",
    "sidecar", "library", "notifications", "backupDatabase", "ocr", "workflow", "integrityCheck", "editor",
)
BACKGROUND_TASK = "backgroundTask"
# The double's jobs queued by name alone, and the queue Immich runs each in (None: not a job in Immich).
JOB_QUEUES: dict[str, str | None] = {
    "file-delete": BACKGROUND_TASK,  # FileDelete after a forced delete
    "upload-event": "thumbnailGeneration",  # on_upload_success goes out once thumbnails are made
    "trash-event": None,  # a websocket event, sent without a job
}
SEPARATOR = "/"


def run_job(st: DoubleState, queue: str, job: Coroutine[Any, Any, Any], name: str) -> None:
    """Run ``job`` in the background as job ``name`` of Immich queue ``queue`` (one of ``QUEUES``): the queue
    endpoints report it as active until it ends."""
    if queue not in QUEUES:
        job.close()
        raise ValueError(f"{queue!r} is not one of Immich's queues: {', '.join(QUEUES)}")
    st.queue(job, f"{queue}{SEPARATOR}{name}")


def queue_of(task_name: str) -> str | None:
    """The queue a background task of the double belongs to (None: not counted)."""
    queue, sep, _ = task_name.partition(SEPARATOR)
    if sep and queue in QUEUES:
        return queue
    return JOB_QUEUES.get(task_name, BACKGROUND_TASK)


def active_counts(st: DoubleState) -> Counter[str]:
    """How many jobs run now in each queue."""
    return Counter(q for task in list(st.jobs) if not task.done() and (q := queue_of(task.get_name())))


def statistics(active: int) -> dict[str, int]:
    """QueueStatisticsDto. The double's jobs start at once (none waits or is delayed) and are not kept after they
    end (no completed or failed counts)."""
    return {"active": active, "completed": 0, "delayed": 0, "failed": 0, "paused": 0, "waiting": 0}


def queues_body(st: DoubleState) -> list[dict[str, Any]]:
    """GET /api/queues: a QueueResponseDto per queue."""
    counts = active_counts(st)
    return [{"name": q, "isPaused": False, "statistics": statistics(counts[q])} for q in QUEUES]


def legacy_body(st: DoubleState) -> dict[str, Any]:
    """GET /api/jobs: QueuesResponseLegacyDto."""
    counts = active_counts(st)
    return {q: {"jobCounts": statistics(counts[q]), "queueStatus": {"isActive": counts[q] > 0, "isPaused": False}}
            for q in QUEUES}


async def get_queues(request: web.Request) -> web.Response:
    await caller(request, "queue.read", admin=True)
    return json_response(queues_body(state(request)))


async def get_queues_legacy(request: web.Request) -> web.Response:
    await caller(request, "job.read", admin=True)
    return json_response(legacy_body(state(request)))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/queues", get_queues)
    app.router.add_get("/api/jobs", get_queues_legacy)
