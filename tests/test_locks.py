"""Locks in Redis across processes: a turn waited for in line, and one that is gone without past its time; a lock
per item of a batch."""

import asyncio
import time

from redis.asyncio import Redis

from stores.locks import in_turn, those_free
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


async def test_locks_of_a_batch_are_taken_where_free_and_only_ones_own_given_back(redis_prefix):
    redis = Redis.from_url(REDIS_URL)
    names = [f"{redis_prefix}item:{n}" for n in range(4)]
    try:
        await redis.set(names[1], "another holder")
        async with those_free(redis, names, 5) as first:
            assert first == [names[0], names[2], names[3]]
            async with those_free(redis, names[2:], 5) as second:
                assert second == []  # all held
            await redis.set(names[3], "a holder after this one's time ran out")
        assert [await redis.get(name) for name in names] == [
            None, b"another holder", None, b"a holder after this one's time ran out"]
        async with those_free(redis, [names[0]], 0.1) as third:
            assert third == [names[0]]
            await asyncio.sleep(0.2)
            assert not await redis.exists(names[0])  # its time ran out: free for anyone
    finally:
        await redis.delete(*names)
        await redis.aclose()
