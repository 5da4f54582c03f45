"""Push admissions go to Redis one call at a time: those that arrive while a call is on its way go together in
the next, each with its own verdict."""

import asyncio

from redis.asyncio import Redis
from wechatpy import parse_message

from bot.dedup import PushDeduplicator, Verdict
from bot.simulate import text_xml
from tests.conftest import REDIS_URL


async def test_admissions_arriving_during_a_call_go_together_in_the_next_each_with_its_verdict(redis_prefix):
    redis = Redis.from_url(REDIS_URL)
    dedup = PushDeduplicator(redis, redis_prefix, 60)
    sent_sizes = []
    admit = dedup._admit

    async def slow_round_trip(keys, args):
        sent_sizes.append(len(keys) // 2)
        await asyncio.sleep(0.05)
        return await admit(keys, args)

    dedup._admit = slow_round_trip
    pushes = [parse_message(text_xml(f"o{number}", "你好")) for number in range(20)]
    try:
        first = asyncio.create_task(dedup.admit("nonce-0", pushes[0], claim=True))
        await asyncio.sleep(0.01)  # its call is on its way
        later = []
        for number, push in enumerate(pushes[1:], 1):  # one per turn of the loop, as requests come
            later.append(asyncio.create_task(dedup.admit(f"nonce-{number}", push, claim=True)))
            await asyncio.sleep(0)
        forged = dedup.admit("nonce-0", pushes[1], claim=False)  # a nonce already used with another push
        retried = dedup.admit("nonce-1", pushes[1], claim=True)  # a retry in the same batch as its first delivery
        admissions = await asyncio.gather(first, *later, forged, retried)
    finally:
        await redis.aclose()
    assert sent_sizes == [1, 21]
    assert [admission.verdict for admission in admissions] == \
        [Verdict.CLAIMED] * 20 + [Verdict.REPLAYED, Verdict.CLAIMED_BEFORE]
