"""Short locks in Redis: one holder at a time across every process, taken if free or waited for in line."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress

from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import LockNotOwnedError
from redis.exceptions import TimeoutError as RedisTimeoutError

# What redis-py raises when Redis cannot be reached in time.
REDIS_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError)
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


async def taken_for_its_time(redis: Redis, name: str, seconds: float) -> bool:
    """Take `name` if nobody holds it and keep it for its `seconds`, never given back; whether this caller did.
    For a turn of a period rather than of a step: the others leave the work alone until the period ends."""
    return bool(await redis.set(name, 1, nx=True, px=milliseconds(seconds)))


def milliseconds(seconds: float) -> int:
    """A key's time to live as Redis takes it: whole milliseconds, at least one."""
    return max(1, round(seconds * 1000))


# Deletes a lock only while it is still the caller's: one that outlived its time may be someone else's.
_GIVE_BACK = """
if redis.call("get", KEYS[1]) == ARGV[1] then
    return redis.call("del", KEYS[1])
end
return 0
"""


async def give_back(redis: Redis, name: str, token: str) -> None:
    """Delete `name` if it still holds `token`: what its holder set, unless it outlived its time."""
    await redis.eval(_GIVE_BACK, 1, name, token)


@asynccontextmanager
async def those_free(redis: Redis, names: Sequence[str], seconds: float) -> AsyncIterator[list[str]]:
    """Take each of `names` that nobody holds, for at most `seconds`; yields those taken, in order, and gives them
    back at the end. One round trip each way however many there are: a lock per item of a batch.

    One taken is the caller's until the end or its `seconds`, whichever
    comes first; the others are someone else's, or were until just now.
    """
    token = uuid.uuid4().hex
    async with redis.pipeline(transaction=False) as taking:
        for name in names:
            taking.set(name, token, nx=True, px=milliseconds(seconds))
        taken = [name for name, took in zip(names, await taking.execute()) if took]
    try:
        yield taken
    finally:
        if taken:
            async with redis.pipeline(transaction=False) as giving:
                for name in taken:
                    giving.eval(_GIVE_BACK, 1, name, token)
                await giving.execute()


@asynccontextmanager
async def in_turn(redis: Redis, name: str, seconds: float) -> AsyncIterator[bool]:
    """Wait in line for `name`, held for at most `seconds`; yields whether this caller holds it. One waited for
    longer than `seconds`, or that could not reach Redis, is gone without; one that cannot reach Redis at the end
    leaves the turn to expire.

    For steps whose transactions would all write the same documents: in line,
    each pays one transaction's time, where side by side they conflict and
    retry over and over. The transactions stay correct without the turn, so
    they do not wait for Redis to come back.
    """
    async with _held(redis.lock(name, timeout=seconds, blocking=True, blocking_timeout=seconds,
                                sleep=TURN_POLL_SECONDS), without_redis=True) as held:
        yield held


@asynccontextmanager
async def _held(lock: Lock, without_redis: bool = False) -> AsyncIterator[bool]:
    """`without_redis`: a Redis that cannot be reached leaves the lock untaken rather than raising, and one held
    to expire rather than raising once the step is over."""
    unreachable = REDIS_UNAVAILABLE if without_redis else ()
    try:
        held = await lock.acquire()
    except unreachable:
        held = False
    try:
        yield held
    finally:
        if held:
            with suppress(LockNotOwnedError, *unreachable):
                await lock.release()
