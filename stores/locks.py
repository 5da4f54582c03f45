"""Short locks in Redis: one holder at a time across every process, taken if free or waited for in line."""

from __future__ import annotations

from contextlib import asynccontextmanager, suppress
from typing import AsyncIterator

from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import LockNotOwnedError

# How often one waiting in line asks again: a wait costs at most this beyond the holder's time.
TURN_POLL_SECONDS = 0.005


@asynccontextmanager
async def held_once(redis: Redis, name: str, seconds: float) -> AsyncIterator[bool]:
    """Take `name` for at most `seconds` if nobody holds it; yields whether this caller did.

    A lock that outlived its `seconds` frees itself (a crashed holder's too)
    and may be someone else's by the end: releasing then leaves it alone.
    """
    async with _held(redis.lock(name, timeout=seconds, blocking=False)) as held:
        yield held


@asynccontextmanager
async def in_turn(redis: Redis, name: str, seconds: float) -> AsyncIterator[bool]:
    """Wait in line for `name`, held for at most `seconds`; yields whether this caller holds it. One waited for
    longer than `seconds` is gone without.

    For steps whose transactions would all write the same documents: in line,
    each pays one transaction's time, where side by side they conflict and
    retry over and over. The transactions stay correct without the turn.
    """
    async with _held(redis.lock(name, timeout=seconds, blocking=True, blocking_timeout=seconds,
                                sleep=TURN_POLL_SECONDS)) as held:
        yield held


@asynccontextmanager
async def _held(lock: Lock) -> AsyncIterator[bool]:
    held = await lock.acquire()
    try:
        yield held
    finally:
        if held:
            with suppress(LockNotOwnedError):
                await lock.release()
