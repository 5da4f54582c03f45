"""Per-promoter daily stats, kept in the same transactions as the commissions they count, and the rankings
of the dashboard's ranges that the worker keeps."""

import asyncio
import os
import subprocess
import sys
from collections import Counter
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

from bot.worker import PERIODIC, rank_promoters
from distribution.calendar import CHINA, china_day
from distribution.ledger import Bucket, EntryKind
from distribution.stats import LEDGER_FIELDS, add_movement, ledger_field
from services.stats import FRESH_RANKING, RANKED_RANGES, SORTS, Ranking
from stores.ledger import LEDGER_ENTRIES, LEDGER_TALLIES, UNCOUNTED
from stores.stats import PROMOTER_DAILY, RANKING_SNAPSHOTS, daily_update
from stores.writes import run_transaction
from tests.conftest import REDIS_URL, production_environ
from tests.order_fixtures import add_member, at, chain, create_order, drain, item, paid_order, send_event

ROOT = Path(__file__).resolve().parent.parent


async def test_daily_stats_of_each_beneficiary_counted_once(server):
    runtime = server.runtime
    a, b, buyer = await chain(runtime, 2)
    await paid_order(runtime, "d1", buyer, [item(10_000), item(2_000, sku="cup")])
    await paid_order(runtime, "d2", buyer, [item(5_000)], when=at(seconds=60))
    await send_event(runtime, "d1", "d1-paid", "paid", at())  # replayed: counted once
    await runtime.orders.apply_pending("d1")
    day = china_day(at())
    assert await runtime.stats.day(b["_id"], day) == {
        "orders": 2, "paid_fen": 17_000, "commission_fen": 1_700, "commission_reversed_fen": 0, "refunded_fen": 0,
        "new_direct_members": 0, "scans": 0, "visits": 0, "buyers": 1, "sales_fen": 17_000}
    assert (await runtime.stats.day(a["_id"], day))["commission_fen"] == 850

    # A refund the next day counts on that day, and the ranking by commission nets it off.
    await send_event(runtime, "d1", "r", "refunded", at(1), items=[{"sku": "tea", "refund_fen": 10_000}])
    await drain(runtime)
    next_day = china_day(at(1))
    assert (await runtime.stats.day(b["_id"], next_day))["commission_reversed_fen"] == 1_000
    assert (await runtime.stats.day(b["_id"], next_day))["refunded_fen"] == 10_000
    ranked = (await runtime.stats.ranking(date(2026, 5, 1), date(2026, 5, 2), "commission", 10)).rows
    assert [(each.member_id, each.net_commission_fen) for each in ranked] == [(b["_id"], 700), (a["_id"], 350)]


def test_days_are_chinas_calendar_days():
    assert china_day(at()) == "2026-05-01"  # 12:00 in China
    assert china_day(at(seconds=12 * 3600 - 1)) == "2026-05-01"
    assert china_day(at(seconds=12 * 3600)) == "2026-05-02"  # midnight in China, 16:00 UTC


# The rankings the worker keeps: today, the last 7 and the last 30 days.
RANKING = "/api/merchant/v1/stats/promoters"


def china_today() -> date:
    return datetime.now(CHINA).date()


def moment(when: datetime) -> datetime:
    """`when` as MongoDB keeps it: to the millisecond."""
    return when.replace(microsecond=when.microsecond // 1000 * 1000)


async def earn(runtime, member: dict, day: date, commission_fen: int) -> None:
    """What posting commissions does to a promoter's day, without the orders."""
    await runtime.db[PROMOTER_DAILY].bulk_write([daily_update(member["_id"], day.isoformat(), {
        "orders": 1, "paid_fen": commission_fen * 10, "commission_fen": commission_fen,
        "sales_fen": commission_fen * 10}).operation()])


async def ranked_commissions(server, **params: str) -> tuple[list[tuple[str, int]], str]:
    response = await server.merchant_get(RANKING, sort="commission", **params)
    assert response.status_code == 200, response.text
    answer = response.json()
    return [(each["nickname"], each["net_commission_fen"]) for each in answer["items"]], answer["computed_at"]


async def two_earners(runtime) -> tuple[dict, dict]:
    ann, bob = await add_member(runtime, nickname="安"), await add_member(runtime, nickname="博")
    today = china_today()
    await earn(runtime, ann, today, 3_000)
    await earn(runtime, bob, today, 1_000)
    await earn(runtime, bob, today - timedelta(days=20), 5_000)  # in the last 30 days only
    return ann, bob


async def test_a_standard_range_is_read_as_the_worker_last_ranked_it_and_any_other_live(server):
    runtime = server.runtime
    ann, bob = await two_earners(runtime)
    today = china_today()
    ranked_at = moment(datetime.now(timezone.utc))
    assert await runtime.stats.save_rankings(ranked_at) == len(RANKED_RANGES) * len(SORTS) == 9
    week = [("安", 3_000), ("博", 1_000)]
    month = [("博", 6_000), ("安", 3_000)]
    assert await ranked_commissions(server) == (week, ranked_at.isoformat())  # the last 7 days by default
    assert await ranked_commissions(server, **{"from": today.isoformat()}) == (week, ranked_at.isoformat())
    assert await ranked_commissions(server, **{"from": (today - timedelta(days=29)).isoformat()}) == \
        (month, ranked_at.isoformat())

    # Bob earns more today, and Ann is renamed: the kept rankings show the old numbers, with the new name.
    await earn(runtime, bob, today, 4_000)
    await runtime.db["members"].update_one({"_id": ann["_id"]}, {"$set": {"nickname": "安安"}})
    assert await ranked_commissions(server) == ([("安安", 3_000), ("博", 1_000)], ranked_at.isoformat())
    # A range the worker does not rank is ranked now, from the days as they are.
    before = datetime.now(timezone.utc)
    live, computed_at = await ranked_commissions(server, **{"from": (today - timedelta(days=2)).isoformat()})
    assert live == [("博", 5_000), ("安安", 3_000)] and datetime.fromisoformat(computed_at) >= moment(before)
    # So is one that ends on another day, even of a standard length.
    yesterday = today - timedelta(days=1)
    assert (await ranked_commissions(server, to=yesterday.isoformat()))[0] == []

    # The worker ranks again: the new numbers.
    again = moment(datetime.now(timezone.utc))
    await runtime.stats.save_rankings(again)
    assert await ranked_commissions(server) == ([("博", 5_000), ("安安", 3_000)], again.isoformat())
    assert await ranked_commissions(server, **{"from": (today - timedelta(days=29)).isoformat()}) == \
        ([("博", 10_000), ("安安", 3_000)], again.isoformat())
    # A shorter ranking is the top of the kept one.
    assert (await ranked_commissions(server, limit="1"))[0] == [("博", 5_000)]


async def test_a_ranking_kept_too_long_ago_or_of_another_day_is_not_read(server):
    runtime = server.runtime
    ann, bob = await two_earners(runtime)
    today = china_today()
    # Kept a minute before midnight in China, then Bob earns more.
    before_midnight = datetime.combine(today, time(23, 59), CHINA).astimezone(timezone.utc)
    await runtime.stats.save_rankings(before_midnight)
    await earn(runtime, bob, today, 4_000)
    week = today - timedelta(days=6), today

    def commissions(ranking: Ranking) -> list[int]:
        return [each.net_commission_fen for each in ranking.rows]

    kept = (await runtime.stats.rankings(*week, ["commission"], 10, before_midnight + timedelta(minutes=4)))
    assert (commissions(kept["commission"]), kept["commission"].computed_at) == ([3_000, 1_000], before_midnight)
    stale = before_midnight + FRESH_RANKING + timedelta(seconds=1)
    live = await runtime.stats.rankings(*week, ["commission"], 10, stale)
    assert (commissions(live["commission"]), live["commission"].computed_at) == ([5_000, 3_000], stale)
    # Two minutes later it is another day: yesterday's "today" is not today's.
    after_midnight = before_midnight + timedelta(minutes=2)
    tomorrow = today + timedelta(days=1)
    live = await runtime.stats.rankings(tomorrow, tomorrow, ["commission"], 10, after_midnight)
    assert (live["commission"].rows, live["commission"].computed_at) == ([], after_midnight)
    # A ranking is only read when every sort asked for was kept.
    await runtime.db[RANKING_SNAPSHOTS].delete_one({"_id": "7d:sales_fen"})
    both = await runtime.stats.rankings(*week, ["commission", "sales"], 10, before_midnight + timedelta(minutes=1))
    assert commissions(both["commission"]) == [5_000, 3_000]


async def test_workers_ranking_at_once_leave_one_ranking_of_each_range_and_sort(server):
    runtime = server.runtime
    for n in range(30):
        await earn(runtime, await add_member(runtime, nickname=f"推广员{n}"), china_today(), 100 + n)
    ranked_at = moment(datetime.now(timezone.utc))
    assert await asyncio.gather(*(runtime.stats.save_rankings(ranked_at) for _ in range(3))) == [9, 9, 9]

    kept = await runtime.db[RANKING_SNAPSHOTS].find().to_list()
    assert sorted(each["_id"] for each in kept) == sorted(f"{days}d:{field}" for days in RANKED_RANGES
                                                          for field in SORTS.values())
    today = china_today()
    for each in kept:
        days = int(each["_id"].split("d:")[0])
        first = (today - timedelta(days=days - 1)).isoformat()
        field = each["_id"].split(":")[1]
        assert (each["first_day"], each["last_day"], each["computed_at"]) == (first, today.isoformat(), ranked_at)
        assert each["rows"] == (await runtime.stats.store.rankings(first, today.isoformat(), [field], 100))[field]
        assert len(each["rows"]) == 30


async def test_python_m_bot_jobs_keeps_the_rankings(server):
    runtime = server.runtime
    await two_earners(runtime)
    settings = runtime.settings
    environ = {**os.environ, "MONGODB_URI": settings.mongodb_uri, "MONGODB_DB": settings.mongodb_db,
               "REDIS_URL": REDIS_URL, "REDIS_PREFIX": settings.redis_prefix, "VAR_DIR": str(settings.var_dir),
               **production_environ(settings.wechat_api_base)}
    done = subprocess.run([sys.executable, "-m", "bot", "jobs"], cwd=ROOT, env=environ, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and '"rankings_kept": 9' in done.stdout, done.stderr

    kept = await runtime.db[RANKING_SNAPSHOTS].find_one({"_id": "7d:net_commission_fen"})
    assert await ranked_commissions(server) == ([("安", 3_000), ("博", 1_000)], kept["computed_at"].isoformat())
    assert (rank_promoters, 60.0) in PERIODIC


async def test_the_shops_ledger_totals_add_up_each_transactions_tally_once(server):
    runtime = server.runtime
    a, b, buyer = await chain(runtime, 2)
    for order_no in ("t1", "t2", "t3"):
        await create_order(runtime, order_no, buyer, [item(10_000)], paid_at=at())
    assert await runtime.orders.apply_pending_many(["t1", "t2", "t3"]) == 3  # one transaction for the three
    await send_event(runtime, "t1", "t1-refund", "refunded", at(1), items=[{"sku": "tea", "refund_fen": 10_000}])
    await drain(runtime)

    entries = await runtime.db[LEDGER_ENTRIES].find().to_list()
    assert len(entries) == 8 and not [entry for entry in entries if UNCOUNTED in entry]  # nothing marked per entry
    assert await runtime.db[LEDGER_TALLIES].count_documents({UNCOUNTED: True}) == 2  # the payments' and the refund's
    assert await runtime.stats.count_totals() == 2
    assert await runtime.stats.count_totals() == 0  # each once

    from_entries: dict[str, Counter] = {}
    for entry in entries:
        add_movement(from_entries, EntryKind(entry["kind"]), Bucket(entry["bucket"]), entry["amount_fen"], entry["at"])
    days = await runtime.stats.funnel.shop_days(min(from_entries), max(from_entries))
    assert {day: {name: fen for name, fen in totals.items() if name in LEDGER_FIELDS and fen}
            for day, totals in days.items()} == {day: {name: fen for name, fen in totals.items() if fen}
                                                 for day, totals in from_entries.items()}


async def test_the_count_ends_the_transaction_a_worker_killed_in_its_turn_left_open(server):
    """The counts commit in the order batches' line: a worker killed inside a batch's transaction, which holds
    the tallies and day totals it wrote until the server reaps it a minute later, does not hold them up."""
    runtime = server.runtime
    _, buyer = await chain(runtime, 1)
    await paid_order(runtime, "k1", buyer, [item(10_000)], when=at())
    turns = runtime.stats.commit_turns
    written = asyncio.Event()

    async def killed_inside_a_batch() -> None:
        async with turns.turn(0.5) as announce:
            async def write_and_stay(session) -> None:
                await runtime.db[LEDGER_TALLIES].update_many({}, {"$set": {"batch": "k"}}, session=session)
                written.set()
                await asyncio.Event().wait()

            await run_transaction(turns.client, write_and_stay, announce)

    stuck = asyncio.create_task(killed_inside_a_batch())
    try:
        await asyncio.wait_for(written.wait(), 5)
        # Outside the line, the count's write would conflict with the open one until the store's time limit.
        assert await runtime.stats.count_totals() == 1
    finally:
        stuck.cancel()
        await asyncio.gather(stuck, return_exceptions=True)
    assert await runtime.db[LEDGER_TALLIES].count_documents({UNCOUNTED: True}) == 0


async def test_entries_marked_one_by_one_before_tallies_are_counted_once(server):
    runtime = server.runtime
    _, buyer = await chain(runtime, 1)
    await paid_order(runtime, "m1", buyer, [item(10_000)], when=at())
    assert await runtime.stats.count_totals() == 1  # the payment's tally
    await runtime.db[LEDGER_ENTRIES].insert_one({  # as an earlier version wrote them
        "_id": "earlier-entry", "account_id": "someone", "bucket": "frozen", "amount_fen": 300,
        "kind": "commission_frozen", "ref": "m0", "at": at(), UNCOUNTED: True})
    day = china_day(at())
    before = (await runtime.stats.funnel.shop_days(day, day)).get(day, {})

    assert await runtime.stats.count_totals() == 1
    assert await runtime.stats.count_totals() == 0
    after = (await runtime.stats.funnel.shop_days(day, day))[day]
    field = ledger_field(EntryKind.COMMISSION_FROZEN, Bucket.FROZEN)
    assert after[field] - before.get(field, 0) == 300
