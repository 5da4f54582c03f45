"""Orders and their events through the service and the worker: the life of an order's commissions."""

import asyncio

import pytest

from distribution.binding import BindingSettings, BindSource, UplineEligibility
from distribution.commission_rules import Trigger
from distribution.orders import NewEvent, NewOrder
from distribution.records import InvalidField
from services.orders import OrderConflict, OrderNotFound
from tests.order_fixtures import (
    add_member,
    assert_ledger_clean,
    at,
    balances,
    chain,
    commissions_of,
    create_order,
    drain,
    iso,
    item,
    paid_order,
    put_rules,
    send_event,
)


async def test_seed_worked_example(server):
    # seeds/002: B sells 100 yuan and A, level 1, earns 10%: 10 yuan; C, B's downline, sells 50 yuan
    # and A, level 2, earns 5%: 2.5 yuan. Here B and C are the buyers, bound under A and B.
    runtime = server.runtime
    a, b, c = await chain(runtime, 2)
    await paid_order(runtime, "B-100", b, [item(10_000)])
    await paid_order(runtime, "C-50", c, [item(5_000)])
    assert await commissions_of(runtime, "B-100") == [(a["_id"], 1, 1_000, "frozen")]
    assert await commissions_of(runtime, "C-50") == [(b["_id"], 1, 500, "frozen"), (a["_id"], 2, 250, "frozen")]
    assert await balances(runtime, a) == (1_250, 0, 0)
    assert await balances(runtime, b) == (500, 0, 0)

    # Frozen until the buyer confirms and the 7 days of the freeze period have passed.
    for order_no in ("B-100", "C-50"):
        await send_event(runtime, order_no, "confirm", "confirmed", at(1))
    await drain(runtime)
    assert (await runtime.commissions.settle_due(at(8, seconds=-1))).settled == 0
    settled = await runtime.commissions.settle_due(at(8))
    assert (settled.settled, settled.settled_fen) == (3, 1_750)
    assert await balances(runtime, a) == (0, 1_250, 0)
    assert await balances(runtime, b) == (0, 500, 0)
    assert {status for *_, status in await commissions_of(runtime, "C-50")} == {"settled"}
    await assert_ledger_clean(runtime)


async def test_unfreeze_at_is_confirmation_plus_freeze_days(server):
    runtime = server.runtime
    await put_rules(runtime, freeze_days=3)
    _, buyer = await chain(runtime, 1)
    await paid_order(runtime, "o1", buyer, [item(10_000)])
    await send_event(runtime, "o1", "c", "confirmed", at(2))
    await drain(runtime)
    order = await runtime.orders.get("o1")
    assert order["unfreeze_at"] == at(5)
    assert [each["unfreeze_at"] for each in order["commissions"]] == [at(5)]


async def test_the_chain_is_snapshotted_when_the_order_is_created(server):
    runtime = server.runtime
    a, b, buyer = await chain(runtime, 2)
    other = (await chain(runtime, 0))[0]
    await create_order(runtime, "snap", buyer, [item(10_000)])
    # The buyer is re-bound under someone else before paying: the order still pays the old chain.
    await runtime.db["members"].update_one({"_id": buyer["_id"]},
                                           {"$set": {"upline_id": other["_id"], "ancestor_ids": [other["_id"]]}})
    await send_event(runtime, "snap", "p", "paid", at())
    await drain(runtime)
    assert await commissions_of(runtime, "snap") == [(b["_id"], 1, 1_000, "frozen"), (a["_id"], 2, 500, "frozen")]
    assert await balances(runtime, other) == (0, 0, 0)


async def test_levels_cut_the_chain_and_self_purchase_puts_the_buyer_first(server):
    runtime = server.runtime
    members = await chain(runtime, 4)
    buyer = members[-1]
    await put_rules(runtime, levels=3, level_rates_bp=(1000, 500, 200))
    await paid_order(runtime, "deep", buyer, [item(10_000)])
    assert [(level, fen) for _, level, fen, _ in await commissions_of(runtime, "deep")] == [(1, 1000), (2, 500), (3, 200)]
    assert [member for member, *_ in await commissions_of(runtime, "deep")] == [m["_id"] for m in members[-2:-5:-1]]

    await put_rules(runtime, levels=2, self_purchase=True)
    await paid_order(runtime, "self", buyer, [item(10_000)])
    assert await commissions_of(runtime, "self") == [(buyer["_id"], 1, 1_000, "frozen"),
                                                      (members[-2]["_id"], 2, 500, "frozen")]


async def test_an_unknown_buyer_or_a_buyer_without_upline_earns_nobody_anything(server):
    runtime = server.runtime
    [loner] = await chain(runtime, 0)
    await paid_order(runtime, "alone", loner, [item(10_000)])
    body = {"order_no": "stranger", "buyer": {"oa_openid": "o_nobody"}, "items": [item(10_000)],
            "paid_at": at().isoformat()}
    await runtime.orders.create(NewOrder.from_dict(body))
    await drain(runtime)
    for order_no in ("alone", "stranger"):
        order = await runtime.orders.get(order_no)
        assert order["status"] == "paid" and order["commissions"] == []
    assert (await runtime.orders.get("stranger"))["buyer_id"] is None


async def test_buyers_are_found_by_openid_unionid_or_member_id(server):
    runtime = server.runtime
    upline, buyer = await chain(runtime, 1)
    await runtime.db["members"].update_one({"_id": buyer["_id"]}, {"$set": {"oa_openid": "o_b", "unionid": "u_b"}})
    for order_no, buyer_ref in (("by-openid", {"oa_openid": "o_b"}), ("by-unionid", {"unionid": "u_b"}),
                                ("by-id", {"member_id": buyer["_id"]})):
        received = await runtime.orders.create(NewOrder.from_dict(
            {"order_no": order_no, "buyer": buyer_ref, "items": [item(100)]}))
        assert received.document["buyer_id"] == buyer["_id"]
        assert received.document["upline_chain"] == [upline["_id"]]


async def test_an_order_created_with_paid_at_is_paid(server):
    runtime = server.runtime
    upline, buyer = await chain(runtime, 1)
    await create_order(runtime, "prepaid", buyer, [item(10_000)], paid_at=at())
    await drain(runtime)
    order = await runtime.orders.get("prepaid")
    assert order["status"] == "paid" and order["paid_at"] == at()
    assert await balances(runtime, upline) == (1_000, 0, 0)
    # A separate paid event from the shop changes nothing.
    await send_event(runtime, "prepaid", "paid-again", "paid", at())
    await drain(runtime)
    assert await balances(runtime, upline) == (1_000, 0, 0)


async def test_replayed_order_returns_the_stored_one_and_other_content_conflicts(server):
    runtime = server.runtime
    _, buyer = await chain(runtime, 1)
    first = await create_order(runtime, "r1", buyer, [item(10_000)])
    again = await create_order(runtime, "r1", buyer, [item(10_000)])
    assert first.created and not again.created and again.document["_id"] == "r1"
    assert again.document["request_hash"] == first.document["request_hash"]
    assert await runtime.db["orders"].count_documents({}) == 1
    with pytest.raises(OrderConflict):
        await create_order(runtime, "r1", buyer, [item(9_999)])


async def test_replayed_events_change_nothing(server):
    runtime = server.runtime
    upline, buyer = await chain(runtime, 1)
    await create_order(runtime, "o", buyer, [item(10_000)])
    for _ in range(3):
        await send_event(runtime, "o", "pay-1", "paid", at())
        await drain(runtime)
    for _ in range(2):
        await send_event(runtime, "o", "refund-1", "refunded", at(1), items=[{"sku": "tea", "refund_fen": 5_000}])
        await drain(runtime)
    assert await balances(runtime, upline) == (500, 0, 0)
    assert len((await runtime.orders.get("o"))["events"]) == 2
    with pytest.raises(OrderConflict):
        await send_event(runtime, "o", "refund-1", "refunded", at(1), items=[{"sku": "tea", "refund_fen": 4_000}])
    with pytest.raises(OrderNotFound):
        await send_event(runtime, "no-such-order", "x", "paid")
    await assert_ledger_clean(runtime)


async def test_a_refund_before_the_payment_waits_and_applies_after_it(server):
    runtime = server.runtime
    upline, buyer = await chain(runtime, 1)
    await create_order(runtime, "ooo", buyer, [item(10_000), item(2_000, sku="cup")])
    await send_event(runtime, "ooo", "refund", "refunded", at(2), items=[{"sku": "tea", "refund_fen": 2_500}])
    await send_event(runtime, "ooo", "confirm", "confirmed", at(1))
    await drain(runtime)
    events = {each["event_id"]: each for each in (await runtime.orders.get("ooo"))["events"]}
    assert events["refund"]["state"] == events["confirm"]["state"] == "waiting"
    assert await balances(runtime, upline) == (0, 0, 0)

    await send_event(runtime, "ooo", "pay", "paid", at())
    await drain(runtime)
    order = await runtime.orders.get("ooo")
    assert {each["event_id"]: each["state"] for each in order["events"]} == dict.fromkeys(
        ("refund", "confirm", "pay"), "applied")
    # Commissions 1,000 + 200, then a quarter of the tea refunded: 250 cancelled.
    assert await commissions_of(runtime, "ooo") == [(upline["_id"], 1, 750, "frozen"), (upline["_id"], 1, 200, "frozen")]
    assert await balances(runtime, upline) == (950, 0, 0)
    assert order["unfreeze_at"] == at(8) and order["refunded_fen"] == 2_500
    await assert_ledger_clean(runtime)


async def test_events_in_any_arrival_order_end_the_same(server):
    runtime = server.runtime
    upline, buyer = await chain(runtime, 1)
    events = [("pay", "paid", at(), None), ("confirm", "confirmed", at(1), None),
              ("r1", "refunded", at(2), [{"sku": "tea", "refund_fen": 3_333}]),
              ("r2", "refunded", at(3), [{"sku": "tea", "refund_fen": 3_333}])]
    for order_no, arrival in (("forward", events), ("backward", events[::-1])):
        await create_order(runtime, order_no, buyer, [item(10_000)])
        for event_id, kind, when, items in arrival:
            await send_event(runtime, order_no, event_id, kind, when, items)
        await drain(runtime)
    assert await commissions_of(runtime, "forward") == await commissions_of(runtime, "backward") == [
        (upline["_id"], 1, 1_000 - 666, "frozen")]  # floor(1,000 × 6,666 / 10,000) cancelled
    await assert_ledger_clean(runtime)


async def test_fifty_concurrent_duplicate_paid_events_post_one_set_of_commissions(server):
    runtime = server.runtime
    a, b, buyer = await chain(runtime, 2)
    await create_order(runtime, "dup", buyer, [item(10_000), item(3_000, sku="cup")])
    # The same event 50 times at once, and 50 more paid events under other ids.
    received = await asyncio.gather(*(send_event(runtime, "dup", "pay", "paid", at()) for _ in range(50)),
                                    *(send_event(runtime, "dup", f"pay-{n}", "paid", at()) for n in range(50)))
    assert sum(each.created for each in received[:50]) == 1
    # Fifty workers apply the order's events at once.
    await asyncio.gather(*(runtime.orders.apply_pending("dup") for _ in range(50)))
    await drain(runtime)
    assert await commissions_of(runtime, "dup") == [
        (b["_id"], 1, 1_000, "frozen"), (a["_id"], 2, 500, "frozen"),
        (b["_id"], 1, 300, "frozen"), (a["_id"], 2, 150, "frozen")]
    assert await balances(runtime, b) == (1_300, 0, 0)
    assert await balances(runtime, a) == (650, 0, 0)
    outcomes = [each["outcome"] for each in (await runtime.orders.get("dup"))["events"]]
    assert len(outcomes) == 51 and sum(not outcome.startswith("ignored") for outcome in outcomes) == 1
    assert await runtime.db["notifications"].count_documents({"kind": "commission_arrived"}) == 2
    await assert_ledger_clean(runtime)


async def test_trigger_confirmed_posts_commissions_on_confirmation(server):
    runtime = server.runtime
    await put_rules(runtime, trigger=Trigger.CONFIRMED)
    upline, buyer = await chain(runtime, 1)
    await paid_order(runtime, "late", buyer, [item(10_000)])
    assert await commissions_of(runtime, "late") == []
    # A refund between payment and confirmation: the commissions are posted net of it.
    await send_event(runtime, "late", "r", "refunded", at(1), items=[{"sku": "tea", "refund_fen": 4_000}])
    await send_event(runtime, "late", "c", "confirmed", at(2))
    await drain(runtime)
    assert await commissions_of(runtime, "late") == [(upline["_id"], 1, 600, "frozen")]
    assert await balances(runtime, upline) == (600, 0, 0)
    await runtime.commissions.settle_due(at(9))
    assert await balances(runtime, upline) == (0, 600, 0)
    await assert_ledger_clean(runtime)


async def test_closing_an_unpaid_order_ignores_a_late_payment(server):
    runtime = server.runtime
    upline, buyer = await chain(runtime, 1)
    await create_order(runtime, "shut", buyer, [item(10_000)])
    await send_event(runtime, "shut", "close", "closed", at())
    await drain(runtime)
    await send_event(runtime, "shut", "pay", "paid", at(1))
    await drain(runtime)
    order = await runtime.orders.get("shut")
    assert order["status"] == "closed" and order["commissions"] == []
    assert [each["outcome"] for each in order["events"]] == ["closed unpaid", "ignored: the order is closed"]


async def test_closing_a_paid_order_refunds_what_is_left(server):
    runtime = server.runtime
    upline, buyer = await chain(runtime, 1)
    await paid_order(runtime, "shut", buyer, [item(10_000)])
    await send_event(runtime, "shut", "r", "refunded", at(1), items=[{"sku": "tea", "refund_fen": 1_000}])
    await send_event(runtime, "shut", "close", "closed", at(2))
    await drain(runtime)
    order = await runtime.orders.get("shut")
    assert order["status"] == "closed" and order["refunded_fen"] == 10_000
    assert await commissions_of(runtime, "shut") == [(upline["_id"], 1, 0, "cancelled")]
    assert await balances(runtime, upline) == (0, 0, 0)
    await assert_ledger_clean(runtime)


async def test_the_buyers_order_totals_count_paid_orders_and_what_they_still_hold(server):
    runtime = server.runtime
    upline, buyer = await chain(runtime, 1)

    async def totals() -> tuple[int, int]:
        [teammate] = await runtime.members.teammates(upline, 1, 10, None)  # what the upline's team page reads
        return teammate.get("order_count", 0), teammate.get("order_fen", 0)

    await create_order(runtime, "unpaid", buyer, [item(50_000)])
    await paid_order(runtime, "t1", buyer, [item(10_000)])
    await paid_order(runtime, "t2", buyer, [item(3_000), item(2_000, sku="cup")])
    assert await totals() == (2, 15_000)
    await send_event(runtime, "t1", "r", "refunded", at(1), items=[{"sku": "tea", "refund_fen": 1_000}])
    await drain(runtime)
    assert await totals() == (2, 14_000)
    # Closing a paid order refunds what is left: it no longer counts.
    await send_event(runtime, "t1", "close", "closed", at(2))
    await send_event(runtime, "t2", "all", "refunded", at(2))
    await drain(runtime)
    assert await totals() == (0, 0)
    await send_event(runtime, "t2", "close", "closed", at(3))  # nothing left to refund: nothing changes
    await drain(runtime)
    assert await totals() == (0, 0)


async def test_refunds_of_an_order_never_counted_in_the_totals_take_nothing_off_them(server):
    runtime = server.runtime
    upline, buyer = await chain(runtime, 1)
    await paid_order(runtime, "old", buyer, [item(10_000)])
    # As an order paid before the totals were kept: not in them.
    await runtime.db["orders"].update_one({"_id": "old"}, {"$unset": {"in_buyer_totals": ""}})
    await runtime.db["buyer_totals"].delete_one({"_id": buyer["_id"]})
    await send_event(runtime, "old", "r", "refunded", at(1))
    await drain(runtime)
    [teammate] = await runtime.members.teammates(upline, 1, 10, None)
    assert (teammate["order_count"], teammate["order_fen"]) == (0, 0)


async def test_totals_a_member_document_held_before_they_were_kept_apart_still_count(server):
    runtime = server.runtime
    upline, buyer = await chain(runtime, 1)
    await paid_order(runtime, "then", buyer, [item(10_000)])
    # As the order was counted when the totals were the member document's own fields.
    await runtime.db["buyer_totals"].delete_one({"_id": buyer["_id"]})
    await runtime.db["members"].update_one({"_id": buyer["_id"]}, {"$set": {"order_count": 1, "order_fen": 10_000}})
    await paid_order(runtime, "now", buyer, [item(3_000)])
    await send_event(runtime, "then", "r", "refunded", at(1), items=[{"sku": "tea", "refund_fen": 4_000}])
    await drain(runtime)
    [teammate] = await runtime.members.teammates(upline, 1, 10, None)
    assert (teammate["order_count"], teammate["order_fen"]) == (2, 9_000)
    assert await runtime.db["buyer_totals"].find_one({"_id": buyer["_id"]}) == {
        "_id": buyer["_id"], "order_count": 1, "order_fen": -1_000}
    assert (await runtime.members.get(buyer["_id"]))["order_count"] == 1  # the member document is not written


async def test_a_buyer_who_spent_the_threshold_may_be_an_upline_until_refunds_take_them_under_it(server):
    runtime = server.runtime
    _, buyer = await chain(runtime, 1)
    await runtime.merchant_settings.put(BindingSettings(upline_eligibility=UplineEligibility.SPEND_THRESHOLD,
                                                        spend_threshold_fen=9_900))
    first, second = await add_member(runtime), await add_member(runtime)
    before = await runtime.relations.bind(first, buyer["_id"], BindSource.OA_SCAN, at(0))
    await paid_order(runtime, "spent", buyer, [item(10_000)])
    after_paying = await runtime.relations.bind(first, buyer["_id"], BindSource.OA_SCAN, at(1))
    await send_event(runtime, "spent", "r", "refunded", at(2), items=[{"sku": "tea", "refund_fen": 200}])
    await drain(runtime)
    after_the_refund = await runtime.relations.bind(second, buyer["_id"], BindSource.OA_SCAN, at(3))
    assert [(each.bound, each.reason) for each in (before, after_paying, after_the_refund)] == [
        (False, "ineligible_upline"), (True, None), (False, "ineligible_upline")]


async def test_buyer_ids_naming_two_members_are_refused_and_nothing_is_written(server):
    runtime = server.runtime
    _, one, other = await chain(runtime, 2)
    await runtime.db["members"].update_one({"_id": one["_id"]}, {"$set": {"oa_openid": "o_one"}})
    body = {"order_no": "two", "buyer": {"member_id": other["_id"], "oa_openid": "o_one"}, "items": [item(100)],
            "paid_at": at().isoformat()}
    with pytest.raises(InvalidField) as refused:
        await runtime.orders.create(NewOrder.from_dict(body))
    assert refused.value.field == "buyer"
    assert await runtime.db["orders"].count_documents({}) == 0
    assert await runtime.db["order_events"].count_documents({}) == 0
    # Both ids naming the same member is just as good as one.
    same = await runtime.orders.create(NewOrder.from_dict({**body, "buyer": {"member_id": one["_id"],
                                                                               "oa_openid": "o_one"}}))
    assert same.document["buyer_id"] == one["_id"]


async def test_times_ahead_of_the_clock_are_refused_and_nothing_is_written(server):
    runtime = server.runtime
    _, buyer = await chain(runtime, 1)
    with pytest.raises(InvalidField) as paid_later:
        await create_order(runtime, "ahead", buyer, [item(100)], paid_at=at(seconds=301), now=at())
    assert paid_later.value.field == "paid_at"
    assert await runtime.db["orders"].count_documents({}) == 0
    await create_order(runtime, "skewed", buyer, [item(100)], paid_at=at(seconds=300), now=at())

    confirmed_later = NewEvent.from_dict({"event_id": "c", "type": "confirmed", "at": iso(at(seconds=301))})
    with pytest.raises(InvalidField) as ahead:
        await runtime.orders.receive_event("skewed", confirmed_later, now=at())
    assert ahead.value.field == "at"
    assert [each["event_id"] for each in await runtime.db["order_events"].find().to_list()] == ["_paid_at"]


async def test_an_unknown_order_is_not_found(server):
    with pytest.raises(OrderNotFound) as missing:
        await server.runtime.orders.get("NOPE")
    assert missing.value.code == "order_not_found"
