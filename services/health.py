"""Whether the stores answer: what the health endpoint reports and a load balancer acts on."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
from pymongo.asynchronous.database import AsyncDatabase

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
