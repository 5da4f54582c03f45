"""A worker killed (kill -9) inside the transaction that applies many orders' payments at once.

The worker process is the real one (`bot worker`'s `run_worker`), with one change: the transaction of a
batch of two or more orders writes everything and then hangs before its commit, so the kill lands inside it
every time. Nothing of that batch may be visible after the kill, and once another worker takes the killed
one's jobs over, every order is paid with its commissions exactly once, well before the database would reap the
transaction the kill left open (60 s): the survivor ends it on the server as it takes its turn to commit.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap

from bot.worker import run_worker
from stores.commit_turns import SERVER_REAPS_SECONDS
from tests.conftest import start_server
from tests.order_fixtures import assert_ledger_clean, balances, chain, commissions_of, create_order, item, send_event
from tests.test_worker_faults import ROOT, until_all_done, worker_environ

ORDERS = 12
PAID_FEN = 10_000
PAID_ONCE = (1_000, 500)  # the default rules: 10% to the buyer's upline, 5% to the one above

WORKER_KILLED_INSIDE_A_BATCH = textwrap.dedent("""
    import asyncio

    import stores.commit_turns
    from bot.__main__ import worker
    from stores.orders import ORDERS
    from stores.writes import run_transaction

    real_commit = stores.commit_turns.commit

    async def hang_before_committing(client, db, writes, announce=None):
        orders = len(writes.guards.get(ORDERS, []))
        if orders < 2:
            return await real_commit(client, db, writes, announce)

        async def everything_but_the_commit(session):
            for collection, operations in writes.guards.items():
                await db[collection].bulk_write(operations, ordered=True, session=session)
            for collection, documents in writes.inserts.items():
                await db[collection].insert_many(documents, ordered=True, session=session)
            print(f"inside a transaction of {orders} orders", flush=True)
            await asyncio.sleep(3600)

        await run_transaction(client, everything_but_the_commit, announce)

    stores.commit_turns.commit = hang_before_committing
    asyncio.run(worker())
""")


async def test_a_worker_killed_inside_a_transaction_of_many_orders_loses_none_and_applies_none_twice(
        make_settings, sandbox, tmp_path):
    settings = make_settings()
    async for server in start_server(settings):
        runtime = server.runtime
        root, upline, buyer = await chain(runtime, 2)
        order_nos = [f"k{n}" for n in range(ORDERS)]
        for order_no in order_nos:  # all queued before the worker starts: its first read takes them together
            await create_order(runtime, order_no, buyer, [item(PAID_FEN)])
            await send_event(runtime, order_no, f"{order_no}-paid", "paid")

        doomed = subprocess.Popen([sys.executable, "-c", WORKER_KILLED_INSIDE_A_BATCH], cwd=ROOT,
                                  env=worker_environ(sandbox, settings, tmp_path), stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        try:
            line = await asyncio.wait_for(asyncio.to_thread(doomed.stdout.readline), 60)
        finally:
            doomed.send_signal(signal.SIGKILL)
            await asyncio.to_thread(doomed.wait, 10)
        assert line.strip() == f"inside a transaction of {ORDERS} orders".encode()

        # Nothing of the batch was committed, and its jobs wait, taken and not acknowledged.
        assert await runtime.db.orders.count_documents({"status": "paid"}) == 0
        assert await runtime.db.commissions.count_documents({}) == 0
        assert await balances(runtime, upline) == (0, 0, 0)
        assert (await runtime.queue.stats())["pending"] == ORDERS

        runtime.queue.claim_idle_ms = 500  # the survivor takes the killed worker's jobs over without waiting 30 s
        stop = asyncio.Event()
        survivor = asyncio.create_task(run_worker(runtime, stop))
        try:
            # The transaction the kill left open holds its orders (and the shop's totals every batch writes)
            # until the survivor's turn to commit ends it: well before the database would give up on it.
            await until_all_done(runtime, SERVER_REAPS_SECONDS / 2, [])
        finally:
            stop.set()
            await asyncio.wait_for(survivor, 15)

        for order_no in order_nos:
            assert await commissions_of(runtime, order_no) == [
                (upline["_id"], 1, PAID_ONCE[0], "frozen"), (root["_id"], 2, PAID_ONCE[1], "frozen")]
        assert await balances(runtime, upline) == (PAID_ONCE[0] * ORDERS, 0, 0)
        assert await balances(runtime, root) == (PAID_ONCE[1] * ORDERS, 0, 0)
        assert await runtime.db.notifications.count_documents({"kind": "commission_arrived"}) == 2 * ORDERS
        await assert_ledger_clean(runtime)
