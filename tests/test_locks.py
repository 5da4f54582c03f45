"""Locks in Redis across processes: a turn waited for in line, and one that is gone without past its time."""

import asyncio
import time

from redis.asyncio import Redis

from stores.locks import in_turn
from tests.conftest import REDIS_URL


async def test_holders_of_a_turn_follow_one_another_and_never_overlap(redis_prefix):
    redis = Redis.from_url(REDIS_URL)
    holding: list[int] = []
    spans: list[tuple[float, float]] = []

    async def hold(number: int) -> bool:
        async with in_turn(redis, f"{redis_prefix}turn", 5) as held:
            holding.append(number)
            assert len(holding) == 1, f"{holding} hold the turn at once"
            started = time.monotonic()
            await asyncio.sleep(0.05)
            spans.append((started, time.monotonic()))
            holding.remove(number)
        return held

    try:
        assert await asyncio.gather(*(hold(number) for number in range(4))) == [True] * 4
        assert not await redis.exists(f"{redis_prefix}turn")  # given back by the last
    finally:
        await redis.aclose()
    spans.sort()
    assert all(earlier[1] <= later[0] for earlier, later in zip(spans, spans[1:]))


async def test_a_turn_held_past_its_time_is_gone_without(redis_prefix):
    redis = Redis.from_url(REDIS_URL)
    try:
        await redis.set(f"{redis_prefix}turn", "a holder that never gives it back")
        started = time.monotonic()
        async with in_turn(redis, f"{redis_prefix}turn", 0.2) as held:
            waited = time.monotonic() - started
        assert not held and 0.15 <= waited < 2  # about its time (the last poll may come a little early)
        assert await redis.get(f"{redis_prefix}turn") == b"a holder that never gives it back"  # not the waiter's
    finally:
        await redis.aclose()
