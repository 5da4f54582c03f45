"""Many orders' events applied together: one transaction for the batch, a stale order alone read again."""

from __future__ import annotations

import pytest
from pymongo.errors import ExecutionTimeout

import stores.commit_turns
from stores.orders import ORDERS
from tests.order_fixtures import (
    assert_ledger_clean,
    at,
    balances,
    chain,
    commissions_of,
    create_order,
    item,
    send_event,
)

PAID_ONCE = (1_000, 500)  # the default rules: 10% to the buyer's upline, 5% to the one above


async def paid_unapplied(runtime, buyer: dict, prefix: str) -> list[str]:
    """Eight orders of `buyer`, each with its payment received and not applied yet: their numbers."""
    order_nos = [f"{prefix}{n}" for n in range(8)]
    for order_no in order_nos:
        await create_order(runtime, order_no, buyer, [item(10_000)])
        await send_event(runtime, order_no, f"{order_no}-paid", "paid", at(0))
    return order_nos


async def test_a_batch_commits_in_one_transaction_and_a_stale_order_alone_is_read_again(server, monkeypatch):
    runtime = server.runtime
    root, upline, buyer = await chain(runtime, 2)
    order_nos = await paid_unapplied(runtime, buyer, "b")

    # Another worker changes b3 while this one plans the batch: b3's guard fails, and only b3 is planned again.
    planned: list[str] = []
    plan = runtime.orders._plan_event

    async def plan_while_another_worker_changes_b3(order, event, counted):
        planned.append(order["_id"])
        if planned == order_nos[:4]:
            await runtime.db.orders.update_one({"_id": "b3"}, {"$inc": {"version": 1}})
        return await plan(order, event, counted)

    transactions: list[list[str]] = []
    commit = stores.commit_turns.commit

    async def counted_commit(client, db, writes, announce):
        transactions.append([operation._filter["_id"] for operation in writes.guards[ORDERS]])
        await commit(client, db, writes, announce)

    monkeypatch.setattr(runtime.orders, "_plan_event", plan_while_another_worker_changes_b3)
    monkeypatch.setattr(stores.commit_turns, "commit", counted_commit)
    assert await runtime.orders.apply_pending_many([*order_nos, "b0", "no-such-order"]) == len(order_nos)

    assert transactions[0] == order_nos  # the whole batch, once each
    assert sorted(planned) == sorted([*order_nos, "b3"])
    assert transactions[-1] == ["b3"]
    for order_no in order_nos:
        assert await commissions_of(runtime, order_no) == [
            (upline["_id"], 1, PAID_ONCE[0], "frozen"), (root["_id"], 2, PAID_ONCE[1], "frozen")]
    assert await balances(runtime, upline) == (PAID_ONCE[0] * len(order_nos), 0, 0)
    assert await balances(runtime, root) == (PAID_ONCE[1] * len(order_nos), 0, 0)
    assert await runtime.db.order_events.count_documents({"state": {"$ne": "applied"}}) == 0
    # The buyer's first paid order counts them, once, though all their orders were paid in one batch.
    days = await runtime.db.promoter_daily.find({"member_id": upline["_id"]}).to_list()
    assert sum(day.get("buyers", 0) for day in days) == 1
    assert sum(day.get("sales_fen", 0) for day in days) == 10_000 * len(order_nos)
    await assert_ledger_clean(runtime)


async def test_each_orders_events_are_applied_in_their_logical_order_across_rounds_of_one_batch(server):
    runtime = server.runtime
    root, upline, buyer = await chain(runtime, 2)
    for order_no in ("r1", "r2", "r3"):
        await create_order(runtime, order_no, buyer, [item(10_000)])
    # Arriving out of order: the confirmation and a refund before the payment, and a second payment.
    await send_event(runtime, "r1", "r1-confirmed", "confirmed", at(1))
    await send_event(runtime, "r1", "r1-paid", "paid", at(0))
    await send_event(runtime, "r2", "r2-refund", "refunded", at(1), items=[{"sku": "tea", "refund_fen": 4_000}])
    await send_event(runtime, "r2", "r2-paid", "paid", at(0))
    await send_event(runtime, "r3", "r3-paid", "paid", at(0))
    await send_event(runtime, "r3", "r3-paid-again", "paid", at(0, seconds=1))

    assert await runtime.orders.apply_pending_many(["r1", "r2", "r3"]) == 5  # the second payment is ignored

    orders = {order["_id"]: order for order in await runtime.db.orders.find().to_list()}
    assert (orders["r1"]["status"], orders["r2"]["status"], orders["r3"]["status"]) == ("confirmed", "paid", "paid")
    assert await commissions_of(runtime, "r2") == [(upline["_id"], 1, 600, "frozen"), (root["_id"], 2, 300, "frozen")]
    assert await balances(runtime, upline) == (1_000 + 600 + 1_000, 0, 0)
    events = {event["_id"]: event for event in await runtime.db.order_events.find().to_list()}
    assert {event["state"] for event in events.values()} == {"applied"}
    assert events["r3:r3-paid-again"]["outcome"].startswith("ignored")
    assert await runtime.orders.apply_pending_many(["r1", "r2", "r3"]) == 0  # a job done twice
    await assert_ledger_clean(runtime)


async def test_a_transaction_that_runs_out_of_time_halves_the_next_ones(server, monkeypatch):
    runtime = server.runtime
    root, upline, buyer = await chain(runtime, 2)
    order_nos = await paid_unapplied(runtime, buyer, "t")

    transactions: list[int] = []
    commit = stores.commit_turns.commit

    async def slow_database(client, db, writes, announce):
        transactions.append(len(writes.guards[ORDERS]))
        if transactions == [8]:  # the first, whole batch: the database did not finish it in time
            raise ExecutionTimeout("operation exceeded time limit", 50)
        await commit(client, db, writes, announce)

    monkeypatch.setattr(stores.commit_turns, "commit", slow_database)
    with pytest.raises(ExecutionTimeout):  # the job is retried
        await runtime.orders.apply_pending_many(order_nos)
    assert await runtime.db.orders.count_documents({"status": "paid"}) == 0
    assert await runtime.orders.apply_pending_many(order_nos) == len(order_nos)
    assert transactions == [8, 4, 4]  # halved, then grown back by one after each commit
    assert runtime.orders.orders_per_transaction == 6
    assert await balances(runtime, upline) == (PAID_ONCE[0] * len(order_nos), 0, 0)
    await assert_ledger_clean(runtime)
