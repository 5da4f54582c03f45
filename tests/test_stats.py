"""Per-promoter daily stats, kept in the same transactions as the commissions they count."""

from datetime import date

from distribution.calendar import china_day
from tests.order_fixtures import at, chain, drain, item, paid_order, send_event


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
        "new_direct_members": 0}
    assert (await runtime.stats.day(a["_id"], day))["commission_fen"] == 850

    # A refund the next day counts on that day, and the ranking by commission nets it off.
    await send_event(runtime, "d1", "r", "refunded", at(1), items=[{"sku": "tea", "refund_fen": 10_000}])
    await drain(runtime)
    next_day = china_day(at(1))
    assert (await runtime.stats.day(b["_id"], next_day))["commission_reversed_fen"] == 1_000
    assert (await runtime.stats.day(b["_id"], next_day))["refunded_fen"] == 10_000
    ranked = await runtime.stats.ranking(date(2026, 5, 1), date(2026, 5, 2), "commission", 10)
    assert [(each.member_id, each.net_commission_fen) for each in ranked] == [(b["_id"], 700), (a["_id"], 350)]


def test_days_are_chinas_calendar_days():
    assert china_day(at()) == "2026-05-01"  # 12:00 in China
    assert china_day(at(seconds=12 * 3600 - 1)) == "2026-05-01"
    assert china_day(at(seconds=12 * 3600)) == "2026-05-02"  # midnight in China, 16:00 UTC
