"""The ledger's invariant: `ledger verify`, tampering caught, and a randomised run of 1,000 events."""

import os
import random
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from distribution.commission import refund_share
from tests.conftest import REDIS_URL, production_environ
from tests.order_fixtures import (
    add_member,
    assert_ledger_clean,
    at,
    balances,
    create_order,
    item,
    paid_order,
    put_rules,
    send_event,
)

ROOT = Path(__file__).resolve().parent.parent


async def test_verify_finds_a_balance_that_differs_from_its_entries(server):
    runtime = server.runtime
    upline = await add_member(runtime)
    buyer = await add_member(runtime, upline)
    await paid_order(runtime, "v", buyer, [item(10_000)])
    report = await runtime.ledger.verify()
    assert report.clean and report.accounts == 1 and report.entries == 1

    await runtime.db["accounts"].update_one({"_id": upline["_id"]}, {"$inc": {"available_fen": 1}})
    await runtime.db["accounts"].insert_one({"_id": "ghost", "frozen_fen": -5, "available_fen": 0, "locked_fen": 0})
    problems = {(each.account_id, each.bucket and each.bucket.value, each.problem)
                for each in (await runtime.ledger.verify()).differences}
    assert problems == {
        (upline["_id"], "available", "balance differs from its entries"),
        ("ghost", "frozen", "balance differs from its entries"),
        ("ghost", "frozen", "must never be negative"),
    }


async def test_ledger_verify_and_jobs_commands(server):
    runtime = server.runtime
    upline = await add_member(runtime)
    buyer = await add_member(runtime, upline)
    await paid_order(runtime, "cli", buyer, [item(10_000)])
    await send_event(runtime, "cli", "c", "confirmed", at(1))
    await runtime.orders.apply_pending("cli")
    settings = runtime.settings
    environ = {**os.environ, "MONGODB_URI": settings.mongodb_uri, "MONGODB_DB": settings.mongodb_db,
               "REDIS_URL": REDIS_URL, "REDIS_PREFIX": settings.redis_prefix, "VAR_DIR": str(settings.var_dir),
               **production_environ(settings.wechat_api_base)}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "bot", *args], cwd=ROOT, env=environ, capture_output=True,
                              text=True, timeout=60)

    due = run("jobs", "--now", "2026-05-09T12:00:00+08:00")
    assert due.returncode == 0 and '"settled": 1' in due.stdout, due.stderr
    assert await balances(runtime, upline) == (0, 1_000, 0)

    clean = run("ledger", "verify")
    assert clean.returncode == 0 and "ledger clean: 1 accounts, 3 entries" in clean.stdout
    await runtime.db["accounts"].update_one({"_id": upline["_id"]}, {"$inc": {"available_fen": -1}})
    broken = run("ledger", "verify")
    assert broken.returncode == 1 and f"{upline['_id']}.available" in broken.stdout


async def test_a_randomised_run_of_a_thousand_events_keeps_every_balance_right(server):
    runtime = server.runtime
    rng = random.Random(20260501)
    await put_rules(runtime, levels=3, level_rates_bp=(1000, 500, 200),
                    sku_rules={"kit": {"fixed_fen_per_unit": [150, 50, 25]}})
    members = [await add_member(runtime)]
    for _ in range(14):
        members.append(await add_member(runtime, rng.choice(members)))

    # Each order's events, then all of them delivered in a shuffled order, some twice.
    events = []
    for number in range(70):
        order_no = f"R{number:03d}"
        items = [item(rng.randrange(1, 30_000), sku=sku, qty=rng.randrange(1, 4))
                 for sku in rng.sample(["tea", "cup", "kit", "pot"], rng.randrange(1, 4))]
        await create_order(runtime, order_no, rng.choice(members[1:]), items)
        when = at(rng.random() * 3)
        order_events = [(order_no, "paid", "paid", when, None)]
        if rng.random() < 0.8:
            order_events.append((order_no, "confirmed", "confirmed", when + (at(1) - at()), None))
        for refund_number in range(rng.choice([0, 0, 1, 2, 3, 5])):
            chosen = rng.choice(items)
            refund = None if rng.random() < 0.1 else [{"sku": chosen["sku"],
                                                       "refund_fen": rng.randrange(1, chosen["paid_fen"] + 1)}]
            order_events.append((order_no, f"refund-{refund_number}", "refunded",
                                 at(rng.random() * 20), refund))
        if rng.random() < 0.1:
            order_events.append((order_no, "closed", "closed", at(21), None))
        events += order_events
    deliveries = events + rng.choices(events, k=1_000 - len(events))
    rng.shuffle(deliveries)
    assert len(deliveries) == 1_000

    touched: set[str] = set()
    clock = at()
    for count, (order_no, event_id, kind, when, refund) in enumerate(deliveries, start=1):
        await send_event(runtime, order_no, event_id, kind, when, refund)
        touched.add(order_no)
        if rng.random() < 0.04:  # the worker catches up now and then, settlement runs now and then
            for each in sorted(touched):
                await runtime.orders.apply_pending(each)
            touched.clear()
        if count % 100 == 0:
            clock += at(3) - at()
            await runtime.commissions.settle_due(clock)
    for each in sorted(touched):
        await runtime.orders.apply_pending(each)
    await runtime.commissions.settle_due(at(15))
    await assert_ledger_clean(runtime)

    # Every commission is its amount less exactly its items' refunded share, and the accounts hold
    # exactly what their commissions say, bucket by bucket.
    orders = {order["_id"]: order async for order in runtime.db["orders"].find()}
    expected = defaultdict(lambda: [0, 0])
    async for commission in runtime.db["commissions"].find():
        refunded = orders[commission["order_no"]]["items"][commission["item_index"]]["refunded_fen"]
        share = refund_share(commission["amount_fen"], commission["item_paid_fen"], 0, refunded)
        assert commission["cancelled_fen"] + commission["clawed_back_fen"] == share, commission
        left = commission["amount_fen"] - share
        assert commission["status"] in {"frozen": ("frozen", "cancelled"), "settled": ("settled", "clawed_back")}[
            "settled" if commission.get("settled_at") else "frozen"]
        expected[commission["beneficiary_id"]][0 if commission["status"] in ("frozen", "cancelled") else 1] += left
    for member_id, (frozen, available) in expected.items():
        assert await balances(runtime, member_id) == (frozen, available, 0)
    states = {event["state"] async for event in runtime.db["order_events"].find()}
    assert states == {"applied"}
    assert any(order["refunded_fen"] for order in orders.values())
    assert await runtime.db["commissions"].count_documents({"status": "settled"}) > 0


async def test_a_members_entries_are_paged_newest_first(server):
    runtime = server.runtime
    upline = await add_member(runtime)
    buyer = await add_member(runtime, upline)
    for number in range(3):
        await paid_order(runtime, f"p{number}", buyer, [item(10_000)], when=at(number))
    entries, after = [], None
    while page := await runtime.ledger.page(upline["_id"], 2, after):
        entries += page
        after = (page[-1]["at"], page[-1]["_id"])
    assert [entry["ref"] for entry in entries] == [f"p{number}:0:1" for number in (2, 1, 0)]
    assert await runtime.ledger.page(buyer["_id"], 2, None) == []
