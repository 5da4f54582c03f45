"""Short locks in Redis: one holder at a time across every process."""

from __future__ import annotations

from contextlib import asynccontextmanager, suppress
from typing import AsyncIterator

from redis.asyncio import Redis
from redis.exceptions import LockNotOwnedError


@asynccontextmanager
async def held_once(redis: Redis, name: str, seconds: float) -> AsyncIterator[bool]:
    """Take `name` for at most `seconds` if nobody holds it; yields whether this caller did.

    A lock that outlived its `seconds` frees itself (a crashed holder's too)
    and may be someone else's by the end: releasing then leaves it alone.
    """
    lock = redis.lock(name, timeout=seconds, blocking=False)
    held = await lock.acquire()
    try:
        yield held
    finally:
        if held:
            with suppress(LockNotOwnedError):
                await lock.release()
