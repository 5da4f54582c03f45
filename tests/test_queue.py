"""The work queue: acknowledged only when done, retried with backoff, nothing lost to a killed worker."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap

import redis.asyncio as aioredis

from stores.job_queue import JobQueue, RetryLater
from tests.conftest import REDIS_URL


async def make_queue(prefix: str, **options) -> JobQueue:
    return JobQueue(aioredis.from_url(REDIS_URL), prefix, **options)


async def test_a_job_is_done_once_and_leaves_the_stream(redis_prefix):
    queue = await make_queue(redis_prefix)
    done = []

    async def handler(payload):
        done.append(payload["n"])

    for n in range(5):
        await queue.enqueue("count", {"n": n})
    assert await queue.drain("c1", {"count": handler}) == 5
    assert done == [0, 1, 2, 3, 4]
    assert await queue.stats() == {"length": 0, "pending": 0, "retrying": 0, "dead": 0}
    await queue.redis.aclose()


async def test_failures_retry_with_backoff_then_go_to_dead_letters(redis_prefix):
    queue = await make_queue(redis_prefix, max_attempts=3, base_backoff_seconds=0.05)
    attempts = []

    async def always_fails(payload):
        attempts.append(asyncio.get_running_loop().time())
        raise RuntimeError("WeChat said no")

    await queue.enqueue("doomed", {})
    for _ in range(40):
        await queue.work("c1", {"doomed": always_fails}, block_ms=None)
        if (await queue.stats())["dead"]:
            break
        await asyncio.sleep(0.03)
    assert len(attempts) == 3
    assert attempts[2] - attempts[1] >= attempts[1] - attempts[0] >= 0.05  # the wait doubles
    ((_, fields),) = await queue.redis.xrange(queue.dead)
    assert b"WeChat said no" in fields[b"reason"]
    await queue.redis.aclose()


async def test_retry_later_waits_without_spending_an_attempt(redis_prefix):
    queue = await make_queue(redis_prefix, max_attempts=1)
    calls = []

    async def rate_limited_once(payload):
        calls.append(1)
        if len(calls) == 1:
            raise RetryLater(0.05, "45009")

    await queue.enqueue("send", {})
    await queue.drain("c1", {"send": rate_limited_once})
    assert (await queue.stats())["retrying"] == 1
    await asyncio.sleep(0.06)
    await queue.drain("c1", {"send": rate_limited_once})
    assert len(calls) == 2 and (await queue.stats())["dead"] == 0
    await queue.redis.aclose()


async def test_an_unknown_job_kind_is_dead_lettered_not_lost(redis_prefix):
    queue = await make_queue(redis_prefix)
    await queue.enqueue("from_the_future", {"x": 1})
    await queue.drain("c1", {})
    assert (await queue.stats())["dead"] == 1
    await queue.redis.aclose()


WORKER_THAT_HANGS = textwrap.dedent("""
    import asyncio, sys
    import redis.asyncio as aioredis
    from stores.job_queue import JobQueue

    async def main():
        queue = JobQueue(aioredis.from_url(sys.argv[1]), sys.argv[2])
        async def hang(payload):
            print("started", flush=True)
            await asyncio.sleep(3600)
        await queue.work("doomed-worker", {"job": hang}, block_ms=5000)

    asyncio.run(main())
""")


async def test_a_worker_killed_mid_job_loses_nothing(redis_prefix):
    queue = await make_queue(redis_prefix, claim_idle_ms=200)
    await queue.enqueue("job", {"order": "A-1"})
    worker = subprocess.Popen([sys.executable, "-c", WORKER_THAT_HANGS, REDIS_URL, redis_prefix],
                              stdout=subprocess.PIPE, cwd=os.getcwd())
    try:
        line = await asyncio.wait_for(asyncio.to_thread(worker.stdout.readline), 30)
        assert line.strip() == b"started"
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    assert (await queue.stats())["pending"] == 1  # taken, never acknowledged

    done = []

    async def finish(payload):
        done.append(payload["order"])

    await asyncio.sleep(0.25)  # idle past claim_idle_ms
    await queue.drain("survivor", {"job": finish})
    assert done == ["A-1"]
    assert await queue.stats() == {"length": 0, "pending": 0, "retrying": 0, "dead": 0}
    await queue.redis.aclose()
