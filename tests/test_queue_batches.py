"""Batched kinds on the work queue: all the jobs of one read in one call, acknowledged together."""

from __future__ import annotations

import pytest
from pymongo.errors import AutoReconnect

from stores.job_queue import Batched, RetryLater
from tests.test_queue import mongo_outage, never_an_outage, queues, redis_url  # noqa: F401 - fixtures


async def test_the_jobs_of_a_batched_kind_in_one_read_are_handled_in_one_call_and_the_others_one_by_one(queues):
    queue = queues()
    calls: list[object] = []

    async def apply_many(payloads):
        calls.append([payload["order"] for payload in payloads])

    async def one(payload):
        calls.append(payload["n"])

    for n in range(3):
        await queue.enqueue("apply", {"order": f"A{n}"})
        await queue.enqueue("other", {"n": n})
    assert await queue.work("c1", {"apply": Batched(apply_many), "other": one}, block_ms=None) == 6
    # The batch takes the place of its kind's first job; the read's order is kept within it.
    assert calls == [["A0", "A1", "A2"], 0, 1, 2]
    assert await queue.stats() == {"length": 0, "pending": 0, "retrying": 0, "dead": 0}

    await queue.enqueue("apply", {"order": "A3"})
    await queue.drain("c1", {"apply": Batched(apply_many), "other": one})
    assert calls[-1] == ["A3"]


async def test_a_failed_batch_retries_each_of_its_jobs_and_buries_each_after_its_last_attempt(queues):
    queue = queues(max_attempts=2, base_backoff_seconds=0)
    seen: list[list[str]] = []

    async def broken(payloads):
        seen.append([payload["order"] for payload in payloads])
        raise ValueError("a bug")

    for order in ("A", "B"):
        await queue.enqueue("apply", {"order": order})
    await queue.work("c1", {"apply": Batched(broken)}, block_ms=None, is_outage=never_an_outage)
    assert await queue.stats() == {"length": 0, "pending": 0, "retrying": 2, "dead": 0}
    await queue.drain("c1", {"apply": Batched(broken)})  # the retries, due at once, come back as one batch
    assert seen == [["A", "B"], ["A", "B"]]
    assert await queue.stats() == {"length": 0, "pending": 0, "retrying": 0, "dead": 2}


async def test_a_batch_asking_to_retry_later_puts_all_its_jobs_back(queues):
    queue = queues()

    async def limited(payloads):
        raise RetryLater(60, "rate limited")

    for order in ("A", "B", "C"):
        await queue.enqueue("send", {"order": order})
    assert await queue.work("c1", {"send": Batched(limited)}, block_ms=None) == 3
    assert await queue.stats() == {"length": 0, "pending": 0, "retrying": 3, "dead": 0}


async def test_a_batch_cut_short_by_an_outage_is_put_back_and_the_rest_of_the_read_stays_this_workers(queues):
    queue = queues(max_attempts=1)
    done: list[object] = []

    async def needs_mongo(payloads):
        raise AutoReconnect("connection refused")

    async def one(payload):
        done.append(payload["n"])

    await queue.enqueue("apply", {"order": "A"})
    await queue.enqueue("apply", {"order": "B"})
    await queue.enqueue("other", {"n": 1})
    with pytest.raises(AutoReconnect):
        await queue.work("c1", {"apply": Batched(needs_mongo), "other": one}, block_ms=None,
                         is_outage=mongo_outage)
    # Both of the batch's jobs wait for a retry without spending an attempt; the job after them was not run.
    assert done == []
    assert await queue.stats() == {"length": 1, "pending": 1, "retrying": 2, "dead": 0}
    assert await queue.work("c1", {"apply": Batched(needs_mongo), "other": one}, block_ms=None,
                            is_outage=mongo_outage) == 1
    assert done == [1]
