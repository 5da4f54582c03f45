"""The worker: drains the job queue and runs the periodic tasks.

Like the message router, both are tables: each feature adds a line to `JOBS`
(job kind -> handler) or `PERIODIC` (task, interval).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any, Awaitable, Callable

from bot.notices import send_new_member_notice
from bot.runtime import Runtime
from services.relations import NOTIFY_JOB, RESYNC_JOB
from stores.job_queue import JobHandler

log = logging.getLogger(__name__)

RuntimeJob = Callable[[Runtime, dict[str, Any]], Awaitable[None]]
PeriodicTask = Callable[[Runtime], Awaitable[Any]]

async def notify_new_direct_member(runtime: Runtime, payload: dict[str, Any]) -> None:
    await runtime.relations.notify_upline(payload["bind_id"], partial(send_new_member_notice, runtime))


async def resync_subtree(runtime: Runtime, payload: dict[str, Any]) -> None:
    await runtime.relations.resync(payload["member_id"])


async def requeue_relation_stragglers(runtime: Runtime) -> int:
    return await runtime.relations.requeue_stragglers(STRAGGLER_AGE, datetime.now(timezone.utc))


# A job not done this long after its commit was lost between commit and enqueue.
STRAGGLER_AGE = timedelta(minutes=2)

JOBS: dict[str, RuntimeJob] = {
    NOTIFY_JOB: notify_new_direct_member,
    RESYNC_JOB: resync_subtree,
}
PERIODIC: list[tuple[PeriodicTask, float]] = [
    (requeue_relation_stragglers, 60.0),
]


def job_handlers(runtime: Runtime) -> dict[str, JobHandler]:
    return {kind: partial(handler, runtime) for kind, handler in JOBS.items()}


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


async def _every(runtime: Runtime, task: PeriodicTask, seconds: float, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await task(runtime)
        except Exception:  # noqa: BLE001 - a failing task must not stop the worker; it runs again next time
            log.exception("periodic task %s failed", task.__name__)
        try:
            await asyncio.wait_for(stop.wait(), seconds)
        except asyncio.TimeoutError:
            pass


async def run_worker(runtime: Runtime, stop: asyncio.Event) -> None:
    periodic = [asyncio.create_task(_every(runtime, task, seconds, stop)) for task, seconds in PERIODIC]
    try:
        await runtime.queue.run(consumer_name(), job_handlers(runtime), stop)
    finally:
        await asyncio.gather(*periodic)
