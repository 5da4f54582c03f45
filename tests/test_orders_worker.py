"""A worker killed between the steps of a paid order's job: the job is redone with the same effect."""

import asyncio
from datetime import datetime, timedelta, timezone

from pymongo.asynchronous.collection import AsyncCollection

from bot.worker import job_handlers
from stores.job_queue import JobQueue
from tests.order_fixtures import (
    assert_ledger_clean,
    at,
    backlog_drained,
    backlog_queued,
    balances,
    chain,
    commissions_of,
    create_order,
    drain,
    item,
    send_event,
)

BIZSEND = "cgi-bin/message/subscribe/bizsend"


async def kill_worker_when(runtime, reached: asyncio.Event) -> None:
    """Run one worker until `reached` is set, then kill it: its job stays pending, unacknowledged."""
    worker = asyncio.create_task(runtime.queue.work("doomed", job_handlers(runtime), block_ms=None))
    await asyncio.wait_for(reached.wait(), 10)
    worker.cancel()
    try:
        await worker
    except asyncio.CancelledError:
        pass
    assert (await runtime.queue.stats())["pending"] == 1


async def another_worker_takes_over(runtime) -> None:
    """A second worker claims the dead one's job (no idle time to wait in a test), then the sweep runs."""
    rescuer = JobQueue(runtime.redis, runtime.settings.redis_prefix, claim_idle_ms=0)
    await rescuer.drain("rescuer", job_handlers(runtime))
    later = datetime.now(timezone.utc) + timedelta(minutes=10)
    await runtime.orders.requeue_due(later)
    await runtime.notifications.requeue_due(later)
    await rescuer.drain("rescuer", job_handlers(runtime))
    assert await runtime.queue.stats() == {"length": 0, "pending": 0, "retrying": 0, "dead": 0}


async def test_killed_after_the_commit_before_queueing_notifications(server, sandbox, monkeypatch):
    runtime = server.runtime
    upline, buyer = await chain(runtime, 1)
    await runtime.db["members"].update_one({"_id": upline["_id"]}, {"$set": {"oa_openid": "oa_up"}})
    await create_order(runtime, "k1", buyer, [item(10_000)])
    await send_event(runtime, "k1", "pay", "paid", at())

    reached = asyncio.Event()

    async def dies_here(notification_ids):
        reached.set()
        await asyncio.Event().wait()  # killed before it gets further

    monkeypatch.setattr(runtime.notifications, "enqueue", dies_here)
    await kill_worker_when(runtime, reached)
    monkeypatch.undo()

    assert await balances(runtime, upline) == (1_000, 0, 0)  # committed before the kill
    await another_worker_takes_over(runtime)
    assert await commissions_of(runtime, "k1") == [(upline["_id"], 1, 1_000, "frozen")]
    assert await balances(runtime, upline) == (1_000, 0, 0)
    assert len(sandbox.state.calls.received(BIZSEND)) == 1
    await assert_ledger_clean(runtime)


async def test_killed_inside_the_transaction(server, sandbox, monkeypatch):
    runtime = server.runtime
    upline, buyer = await chain(runtime, 1)
    await runtime.db["members"].update_one({"_id": upline["_id"]}, {"$set": {"oa_openid": "oa_up"}})
    await create_order(runtime, "k2", buyer, [item(10_000)])
    await send_event(runtime, "k2", "pay", "paid", at())

    reached = asyncio.Event()
    real_bulk_write = AsyncCollection.bulk_write

    async def accounts_never_answer(collection, *args, **kwargs):
        if collection.name == "accounts":
            reached.set()
            await asyncio.Event().wait()
        return await real_bulk_write(collection, *args, **kwargs)

    monkeypatch.setattr(AsyncCollection, "bulk_write", accounts_never_answer)
    await kill_worker_when(runtime, reached)
    monkeypatch.undo()

    # Nothing of the step was committed: the commissions and ledger entries inserted before the kill are gone.
    assert await runtime.db["commissions"].count_documents({}) == 0
    assert await runtime.db["ledger_entries"].count_documents({}) == 0
    await another_worker_takes_over(runtime)
    assert await commissions_of(runtime, "k2") == [(upline["_id"], 1, 1_000, "frozen")]
    assert await balances(runtime, upline) == (1_000, 0, 0)
    assert len(sandbox.state.calls.received(BIZSEND)) == 1
    await assert_ledger_clean(runtime)


async def paid_but_never_queued(runtime, order_no: str, monkeypatch) -> None:
    """The order's payment stored, its job lost: Redis went away in between."""
    async def down(kind, payload):
        raise ConnectionError("Redis went away between storing and queueing")

    monkeypatch.setattr(runtime.queue, "enqueue", down)
    try:
        await send_event(runtime, order_no, "pay", "paid", at())
    except ConnectionError:
        pass
    monkeypatch.undo()


async def test_an_event_stored_but_never_queued_is_found_by_the_sweep(server, monkeypatch):
    runtime = server.runtime
    upline, buyer = await chain(runtime, 1)
    await create_order(runtime, "k3", buyer, [item(10_000)])
    await paid_but_never_queued(runtime, "k3", monkeypatch)
    await drain(runtime)
    assert await balances(runtime, upline) == (0, 0, 0)
    assert await runtime.orders.requeue_due() == 0  # not yet: its job may still be on its way
    assert await runtime.orders.requeue_due(datetime.now(timezone.utc) + timedelta(minutes=3)) == 1
    await drain(runtime)
    assert await balances(runtime, upline) == (1_000, 0, 0)


async def test_the_sweep_leaves_a_backlog_older_than_its_delay_to_drain(server, monkeypatch):
    """A job that waits behind a long backlog is not lost: the sweep queues again only what was queued before
    the backlog's oldest job, and takes the rest for lost once that job is done."""
    runtime = server.runtime
    started = datetime.now(timezone.utc)
    await backlog_queued(runtime, 200)
    upline, buyer = await chain(runtime, 1)
    await create_order(runtime, "k4", buyer, [item(10_000)])
    await paid_but_never_queued(runtime, "k4", monkeypatch)
    later = started + timedelta(minutes=3)  # past the event's sweep delay (2 minutes)
    assert await runtime.orders.requeue_due(later) == 0  # it may be waiting behind the backlog
    await backlog_drained(runtime)
    assert await runtime.orders.requeue_due(later) == 1
    await drain(runtime)
    assert await balances(runtime, upline) == (1_000, 0, 0)
