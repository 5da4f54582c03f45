"""Whether the stores answer and a worker works: what the health endpoint reports and a load balancer acts on."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
from pymongo.asynchronous.database import AsyncDatabase

from stores.job_queue import JobQueue, QueueStatus

CHECK_SECONDS = 2.0
OK = "ok"


async def check_stores(db: AsyncDatabase, redis: aioredis.Redis) -> dict[str, str]:
    """`{"mongo": ..., "redis": ...}`, each "ok" or "down: <ExceptionName>"; both are asked at once, each given
    `CHECK_SECONDS` to answer."""
    checks = {"mongo": db.command("ping"), "redis": redis.ping()}
    results = await asyncio.gather(*(asyncio.wait_for(check, CHECK_SECONDS) for check in checks.values()),
                                   return_exceptions=True)
    return {name: f"down: {type(result).__name__}" if isinstance(result, BaseException) else OK
            for name, result in zip(checks, results)}


async def check_worker(queue: JobQueue, stale_seconds: float) -> tuple[str, QueueStatus | None]:
    """"ok" when some worker got through a batch of the queue within `stale_seconds` (each writes a heartbeat
    to Redis, which any process reads), else "down: <why>"; and the queue's status, None when Redis did not
    answer within `CHECK_SECONDS`."""
    try:
        status = await asyncio.wait_for(queue.status(), CHECK_SECONDS)
    except Exception as error:  # noqa: BLE001 - whatever it is, the workers' state is unknown and that is the answer
        return f"down: the queue could not be read ({type(error).__name__})", None
    if status.last_heartbeat is None:
        return "down: no worker has written a heartbeat yet", status
    silent = status.now - status.last_heartbeat
    if silent > stale_seconds:
        return f"down: no worker has run for {silent:.0f} s (WORKER_STALE_SECONDS is {stale_seconds:g})", status
    return OK, status
