"""Commission amounts (rules, cap) and their reversal on refunds, before and after settlement, with debt."""

from distribution.ledger import withdrawal_locked
from stores.writes import WriteSet, commit
from tests.order_fixtures import (
    assert_ledger_clean,
    at,
    balances,
    chain,
    commissions_of,
    drain,
    item,
    paid_order,
    put_grades,
    put_rules,
    send_event,
)


async def confirm_and_settle(runtime, order_no, when=at(1)):
    await send_event(runtime, order_no, f"{order_no}-confirmed", "confirmed", when)
    await drain(runtime)
    return await runtime.commissions.settle_due(when + (at(7) - at()))


async def refund(runtime, order_no, event_id, fen=None, sku="tea", when=at(2)):
    items = None if fen is None else [{"sku": sku, "refund_fen": fen}]
    await send_event(runtime, order_no, event_id, "refunded", when, items)
    await drain(runtime)


async def test_fixed_amount_per_unit_times_quantity(server):
    runtime = server.runtime
    await put_rules(runtime, sku_rules={"tea": {"fixed_fen_per_unit": [300, 100]}})
    a, b, buyer = await chain(runtime, 2)
    await paid_order(runtime, "fixed", buyer, [item(30_000, qty=3), item(10_000, sku="cup")])
    # tea: 300 and 100 fen per unit × 3; cup: the default rates, 10% and 5%.
    assert await commissions_of(runtime, "fixed") == [
        (b["_id"], 1, 900, "frozen"), (a["_id"], 2, 300, "frozen"),
        (b["_id"], 1, 1_000, "frozen"), (a["_id"], 2, 500, "frozen")]


async def test_category_rules_apply_to_items_of_the_category(server):
    runtime = server.runtime
    await put_rules(runtime, category_rules={"books": {"rate_bp": [2000, 500]}})
    a, b, buyer = await chain(runtime, 2)
    await paid_order(runtime, "cat", buyer, [item(10_000, sku="novel", category="books")])
    assert await commissions_of(runtime, "cat") == [(b["_id"], 1, 2_000, "frozen"), (a["_id"], 2, 500, "frozen")]


async def test_the_cap_bounds_an_items_total_share_nearest_level_first(server):
    runtime = server.runtime
    await put_rules(runtime, sku_rules={"tea": {"fixed_fen_per_unit": [1_000, 1_000]}})
    a, b, buyer = await chain(runtime, 2)
    # 30% of 5,000 fen is 1,500: level 1 takes 1,000, level 2 what is left.
    await paid_order(runtime, "capped", buyer, [item(5_000)])
    assert await commissions_of(runtime, "capped") == [(b["_id"], 1, 1_000, "frozen"), (a["_id"], 2, 500, "frozen")]
    await put_rules(runtime, cap_bp=1_000, level_rates_bp=(800, 200),
                    sku_rules={"tea": {"fixed_fen_per_unit": [1_000, 1_000]}})
    await paid_order(runtime, "capped-10", buyer, [item(5_000)])
    assert await commissions_of(runtime, "capped-10") == [(b["_id"], 1, 500, "frozen")]


async def test_rates_round_down_to_the_fen(server):
    runtime = server.runtime
    a, b, buyer = await chain(runtime, 2)
    await paid_order(runtime, "odd", buyer, [item(999)])
    assert await commissions_of(runtime, "odd") == [(b["_id"], 1, 99, "frozen"), (a["_id"], 2, 49, "frozen")]


async def test_grade_rates_pay_promoters_of_that_grade(server):
    runtime = server.runtime
    await put_rules(runtime, grade_rates_bp={"gold": (2000, 1000)})
    a, b, buyer = await chain(runtime, 2)
    await runtime.db["promoter_totals"].insert_one({"_id": b["_id"], "grade": "gold"})
    await paid_order(runtime, "graded", buyer, [item(10_000)])
    assert await commissions_of(runtime, "graded") == [(b["_id"], 1, 2_000, "frozen"), (a["_id"], 2, 500, "frozen")]


async def test_partial_and_full_refunds_before_settlement_cancel_pro_rata(server):
    runtime = server.runtime
    a, b, buyer = await chain(runtime, 2)
    await paid_order(runtime, "r", buyer, [item(10_000)])
    await refund(runtime, "r", "r1", 2_500)
    assert await commissions_of(runtime, "r") == [(b["_id"], 1, 750, "frozen"), (a["_id"], 2, 375, "frozen")]
    assert await balances(runtime, b) == (750, 0, 0) and await balances(runtime, a) == (375, 0, 0)
    await refund(runtime, "r", "r2")  # the rest
    assert await commissions_of(runtime, "r") == [(b["_id"], 1, 0, "cancelled"), (a["_id"], 2, 0, "cancelled")]
    assert await balances(runtime, b) == (0, 0, 0) and await balances(runtime, a) == (0, 0, 0)
    # Nothing is left to settle, and a refund of more than is left changes nothing.
    await refund(runtime, "r", "r3", 100)
    assert (await confirm_and_settle(runtime, "r")).settled == 0
    order = await runtime.orders.get("r")
    assert order["status"] == "refunded" and order["refunded_fen"] == 10_000
    await assert_ledger_clean(runtime)


async def test_settlement_pays_what_is_left_after_a_partial_refund(server):
    runtime = server.runtime
    upline, buyer = await chain(runtime, 1)
    await paid_order(runtime, "p", buyer, [item(10_000)])
    await refund(runtime, "p", "r1", 3_000)
    settled = await confirm_and_settle(runtime, "p")
    assert settled.settled_fen == 700
    assert await balances(runtime, upline) == (0, 700, 0)
    await assert_ledger_clean(runtime)


async def test_refunds_after_settlement_claw_back(server):
    runtime = server.runtime
    upline, buyer = await chain(runtime, 1)
    await paid_order(runtime, "s", buyer, [item(10_000)])
    await confirm_and_settle(runtime, "s")
    assert await balances(runtime, upline) == (0, 1_000, 0)
    await refund(runtime, "s", "r1", 4_000, when=at(10))
    assert await commissions_of(runtime, "s") == [(upline["_id"], 1, 600, "settled")]
    assert await balances(runtime, upline) == (0, 600, 0)
    await refund(runtime, "s", "r2", when=at(11))
    assert await commissions_of(runtime, "s") == [(upline["_id"], 1, 0, "clawed_back")]
    assert await balances(runtime, upline) == (0, 0, 0)
    await assert_ledger_clean(runtime)


async def test_a_clawback_may_leave_debt_that_later_earnings_pay_first(server):
    runtime = server.runtime
    upline, buyer = await chain(runtime, 1)
    await paid_order(runtime, "first", buyer, [item(10_000)])
    await confirm_and_settle(runtime, "first")
    # The promoter asks to withdraw everything: the amount is locked, as the withdrawals feature does.
    writes = WriteSet()
    writes.ledger(withdrawal_locked(upline["_id"], "w1", 1_000), at(9))
    await commit(runtime.mongo, runtime.db, writes)
    assert await balances(runtime, upline) == (0, 0, 1_000)

    await refund(runtime, "first", "full-refund", when=at(10))
    assert await balances(runtime, upline) == (0, -1_000, 1_000)  # in debt

    await paid_order(runtime, "second", buyer, [item(30_000)], when=at(10))
    await confirm_and_settle(runtime, "second", when=at(11))
    # 3,000 earned: 1,000 pays the debt, 2,000 is withdrawable.
    assert await balances(runtime, upline) == (0, 2_000, 1_000)
    await assert_ledger_clean(runtime)


async def test_refunds_of_several_items_by_sku(server):
    runtime = server.runtime
    upline, buyer = await chain(runtime, 1)
    await paid_order(runtime, "multi", buyer, [item(10_000), item(4_000, sku="cup"), item(6_000, sku="cup")])
    await refund(runtime, "multi", "cups", 5_000, sku="cup")
    # The cups' refund fills the first cup (4,000) and then 1,000 of the second.
    assert await commissions_of(runtime, "multi") == [
        (upline["_id"], 1, 1_000, "frozen"), (upline["_id"], 1, 0, "cancelled"), (upline["_id"], 1, 500, "frozen")]
    await assert_ledger_clean(runtime)


async def test_settlement_and_grade_upgrade(server):
    runtime = server.runtime
    await put_grades(runtime, {"name": "silver", "min_own_settled_sales_fen": 10_000},
                     {"name": "gold", "min_own_settled_sales_fen": 30_000, "min_direct_members": 1})
    upline, buyer = await chain(runtime, 1)
    await paid_order(runtime, "g1", buyer, [item(10_000)])
    assert await runtime.grades.grades_of([upline["_id"]]) == {}
    await confirm_and_settle(runtime, "g1")
    assert await runtime.grades.grades_of([upline["_id"]]) == {upline["_id"]: "silver"}
    await paid_order(runtime, "g2", buyer, [item(25_000)], when=at(10))
    await refund(runtime, "g2", "r", 5_000, when=at(10))
    await confirm_and_settle(runtime, "g2", when=at(11))
    standing = await runtime.grades.standing(upline["_id"])
    assert standing["own_settled_sales_fen"] == 30_000 and standing["grade"] == "gold"
    assert [(each["from_grade"], each["to_grade"], each["reason"]) for each in await runtime.grades.history(
        upline["_id"])] == [(None, "silver", "settlement"), ("silver", "gold", "settlement")]
