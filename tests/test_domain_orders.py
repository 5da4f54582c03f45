"""The order domain on its own: what a request must be, the events' logical order, refunds, the checks against
the stored order and the clock."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from distribution.orders import (
    CLOCK_SKEW,
    IMPLIED_PAID_EVENT,
    LATEST,
    EventType,
    NewEvent,
    NewOrder,
    OrderStatus,
    check_not_ahead,
    check_refunds,
    ignored,
    logical_key,
    must_wait,
    plan_refund,
    refund_by_item,
    the_buyer,
    unfreeze_time,
)
from distribution.records import InvalidField

T0 = datetime(2026, 5, 1, 4, 0, tzinfo=timezone.utc)


def item(paid_fen: int, sku: str = "tea", **extra) -> dict:
    return {"sku": sku, "title": "龙井茶", "qty": 1, "paid_fen": paid_fen, **extra}


def new_order(**fields) -> dict:
    return {"order_no": "SO-1", "buyer": {"member_id": "m1"}, "items": [item(1_000)], **fields}


def stored(*items: dict, status: OrderStatus = OrderStatus.PAID, **fields) -> dict:
    return {"status": status, "items": [dict(each) for each in items], **fields}


def event(kind: EventType, at: datetime | None = None, received_at: datetime = T0, event_id: str = "e") -> dict:
    return {"type": kind, "at": at, "received_at": received_at, "event_id": event_id}


def field_of(build, body) -> str:
    with pytest.raises(InvalidField) as raised:
        build(body)
    return raised.value.field


# --- requests ------------------------------------------------------------------------------------------


def test_a_new_order_is_parsed_to_aware_utc_with_its_buyer_ids_trimmed():
    order = NewOrder.from_dict(new_order(buyer={"oa_openid": " o_1 ", "unionid": "u_1"},
                                         items=[item(1_000), item(500, sku="cup", qty=2)],
                                         paid_at="2026-05-01T12:00:00+08:00"))
    assert order.paid_at == T0 and order.paid_at.tzinfo is not None
    assert order.buyer.ids() == {"unionid": "u_1", "oa_openid": "o_1"}
    assert order.total_fen == 1_500
    assert NewOrder.from_dict(new_order(paid_at="2026-05-01T04:00:00Z")).paid_at == T0
    assert NewOrder.from_dict(new_order()).paid_at is None


@pytest.mark.parametrize("body, field", [
    ({}, "order_no"),
    (new_order(order_no="a/b"), "order_no"),
    (new_order(order_no="_x"), "order_no"),
    (new_order(order_no="x" * 65), "order_no"),
    (new_order(buyer={}), "buyer"),
    (new_order(buyer={"email": "x"}), "email"),
    (new_order(buyer={"member_id": 5}), "buyer.member_id"),
    (new_order(buyer={"member_id": "  "}), "buyer.member_id"),
    (new_order(buyer={"member_id": "x" * 129}), "buyer.member_id"),
    (new_order(items=[]), "items"),
    (new_order(items=[item(1)] * 201), "items"),
    (new_order(items=[{"sku": "a"}]), "items[0].title"),
    (new_order(items=[item(1), {**item(1), "qty": 0}]), "items[1].qty"),
    (new_order(items=[{**item(1), "paid_fen": 1.5}]), "items[0].paid_fen"),
    (new_order(items=[{**item(1), "paid_fen": 10 ** 30}]), "items[0].paid_fen"),
    (new_order(items=["tea"]), "items[0]"),
    (new_order(paid_at="yesterday"), "paid_at"),
    (new_order(paid_at="2026-05-01T12:00:00"), "paid_at"),
    (new_order(paid_at="0001-01-01T00:00:00+01:00"), "paid_at"),
    (new_order(paid_at="2100-01-01T00:00:00Z"), "paid_at"),
    (new_order(paid_at=20260501), "paid_at"),
    (new_order(extra=1), "extra"),
])
def test_bad_orders_are_refused_by_field(body, field):
    assert field_of(NewOrder.from_dict, body) == field


def test_a_refund_event_sums_its_lines_per_sku_in_the_order_first_named():
    refund = NewEvent.from_dict({"event_id": "r-1:a", "type": "refunded", "at": "2026-05-02T12:00:00+08:00",
                                 "items": [{"sku": "tea", "refund_fen": 100}, {"sku": "cup", "refund_fen": 5},
                                           {"sku": "tea", "refund_fen": 7}]})
    assert refund.type is EventType.REFUNDED and refund.at == T0 + timedelta(days=1)
    assert refund.refund_lines == [("tea", 100), ("cup", 5), ("tea", 7)]
    assert refund.refunds == (("tea", 107), ("cup", 5))
    everything = NewEvent.from_dict({"event_id": "r-2", "type": "refunded"})
    assert everything.refunds is None and everything.refund_lines is None and everything.at is None


@pytest.mark.parametrize("body, field", [
    ({"type": "paid"}, "event_id"),
    ({"event_id": "_x", "type": "paid"}, "event_id"),
    ({"event_id": "e", "type": "shipped"}, "type"),
    ({"event_id": "e"}, "type"),
    ({"event_id": "e", "type": "paid", "items": [{"sku": "tea", "refund_fen": 1}]}, "items"),
    ({"event_id": "e", "type": "refunded", "items": []}, "items"),
    ({"event_id": "e", "type": "refunded", "items": [{"sku": "tea", "refund_fen": 0}]}, "items[0].refund_fen"),
    ({"event_id": "e", "type": "refunded", "items": [{"sku": "tea"}]}, "items[0].refund_fen"),
    ({"event_id": "e", "type": "confirmed", "at": "2026-05-01"}, "at"),
    ({"event_id": "e", "type": "confirmed", "note": "x"}, "note"),
])
def test_bad_events_are_refused_by_field(body, field):
    assert field_of(NewEvent.from_dict, body) == field


def test_the_implied_payment_is_a_paid_event_under_an_id_no_merchant_can_send():
    payment = NewEvent.implied_payment(T0)
    assert (payment.event_id, payment.type, payment.at, payment.refunds) == (
        IMPLIED_PAID_EVENT, EventType.PAID, T0, None)
    assert field_of(NewEvent.from_dict, {"event_id": IMPLIED_PAID_EVENT, "type": "paid"}) == "event_id"


def test_request_hashes_are_those_stored_orders_and_events_were_received_with():
    # A replay is told from a conflict by comparing hashes with those stored: they must never change.
    orders = [
        {"order_no": "SO-1", "buyer": {"oa_openid": " o_b "}, "paid_at": "2026-05-01T12:00:00+08:00",
         "items": [{"sku": "tea", "title": "龙井茶", "qty": 2, "paid_fen": 19800, "category": "drinks"}]},
        {"order_no": "SO-2", "buyer": {"member_id": "m1", "unionid": "u1"},
         "items": [{"sku": "tea", "title": "Tea", "qty": 1, "paid_fen": 100},
                   {"sku": "cup", "title": "Cup", "qty": 3, "paid_fen": 0, "category": None}]},
    ]
    events = [
        {"event_id": "pay-1", "type": "paid", "at": "2026-05-01T12:00:00Z"},
        {"event_id": "r1", "type": "refunded", "items": [{"sku": "tea", "refund_fen": 100},
                                                          {"sku": "cup", "refund_fen": 5},
                                                          {"sku": "tea", "refund_fen": 7}]},
        {"event_id": "c", "type": "closed"},
    ]
    assert [NewOrder.from_dict(each).request_hash() for each in orders] == [
        "8aa807dfea2c369f5a9ecea16829a1e9e14cda8e216d41398e20d0a87f05da05",
        "c72db674d1310842f48721dd73b63e1e32ab3c4c8f4352c08cdbb62cb0aa8fb7"]
    assert [NewEvent.from_dict(each).request_hash() for each in events] == [
        "e5f5abf6d388da105fa8e154deb6aac4d77506859fd800b5636e4fee6f24c502",
        "b08dc89c700bdb8b85c16f58fb00cce6f23baf9853fe589ed5c57d54cb68b1be",
        "c4cc6ae23606f87ab8d265025abb2cc4fb640c5596c74115364de32b7e78f844"]


def test_the_request_models_document_every_field():
    for model in (NewOrder, NewEvent):
        schema = model.model_json_schema()
        assert schema["description"] and schema["examples"]
        for name, spec in schema["properties"].items():
            assert spec.get("description"), f"{model.__name__}.{name}"
        for example in schema["examples"]:
            model.from_dict(example)


# --- checks against the stored order and the clock --------------------------------------------------------


def test_refund_lines_must_name_the_orders_skus_and_never_refund_more_than_was_paid():
    order = stored(item(1_000), item(500, sku="cup"), item(300))
    check_refunds([("tea", 1_300), ("cup", 500)], order)
    with pytest.raises(InvalidField) as unknown:
        check_refunds([("cup", 1), ("pen", 1)], order)
    assert unknown.value.field == "items[1].sku"
    with pytest.raises(InvalidField) as too_much:
        check_refunds([("cup", 300), ("tea", 1), ("cup", 201)], order)
    assert too_much.value.field == "items[2].refund_fen"


def test_a_time_may_run_a_few_minutes_ahead_of_the_clock_and_no_more():
    check_not_ahead("at", None, T0)
    check_not_ahead("at", T0 - timedelta(days=400), T0)
    check_not_ahead("at", T0 + CLOCK_SKEW, T0)
    with pytest.raises(InvalidField) as ahead:
        check_not_ahead("paid_at", T0 + CLOCK_SKEW + timedelta(seconds=1), T0)
    assert ahead.value.field == "paid_at"


def test_buyer_ids_that_name_different_members_are_refused():
    member, other = {"_id": "m1"}, {"_id": "m2"}
    assert the_buyer({}) is None
    assert the_buyer({"member_id": None, "oa_openid": None}) is None
    assert the_buyer({"member_id": member, "oa_openid": None}) is member
    assert the_buyer({"member_id": member, "unionid": {"_id": "m1"}, "oa_openid": None})["_id"] == "m1"
    with pytest.raises(InvalidField) as disagree:
        the_buyer({"member_id": member, "oa_openid": other})
    assert disagree.value.field == "buyer"


# --- applying events ---------------------------------------------------------------------------------------


def test_events_apply_paid_confirmed_refunded_closed_then_by_time_then_by_arrival():
    events = [
        event(EventType.CLOSED, T0, event_id="close"),
        event(EventType.REFUNDED, T0 + timedelta(days=2), event_id="late refund"),
        event(EventType.REFUNDED, T0 + timedelta(days=1), event_id="refund"),
        event(EventType.REFUNDED, None, received_at=T0 + timedelta(days=1, hours=1), event_id="untimed refund"),
        event(EventType.CONFIRMED, T0, event_id="confirm"),
        event(EventType.PAID, T0 + timedelta(days=9), event_id="pay"),
    ]
    assert [each["event_id"] for each in sorted(events, key=logical_key)] == [
        "pay", "confirm", "refund", "untimed refund", "late refund", "close"]


def test_what_waits_for_the_payment_and_what_is_ignored():
    unpaid, paid = stored(status=OrderStatus.CREATED), stored()
    confirmed = stored(status=OrderStatus.CONFIRMED, confirmed_at=T0)
    closed = stored(status=OrderStatus.CLOSED)
    for kind in (EventType.CONFIRMED, EventType.REFUNDED):
        assert must_wait(unpaid, event(kind)) and not must_wait(paid, event(kind))
    assert not must_wait(unpaid, event(EventType.PAID)) and not must_wait(unpaid, event(EventType.CLOSED))
    assert ignored(unpaid, event(EventType.PAID)) is None
    assert ignored(paid, event(EventType.PAID)) == "ignored: already paid"
    assert ignored(paid, event(EventType.CONFIRMED)) is None
    assert ignored(confirmed, event(EventType.CONFIRMED)) == "ignored: already confirmed"
    assert ignored(confirmed, event(EventType.REFUNDED)) is None
    for kind in EventType:
        assert ignored(closed, event(kind)) == "ignored: the order is closed"


def test_a_skus_refund_fills_its_items_in_order_never_past_what_is_left():
    order = stored(item(1_000), item(500, sku="cup"), item(300, refunded_fen=100))
    assert refund_by_item(order, (("tea", 1_100),)) == {0: 1_000, 2: 100}
    assert refund_by_item(order, (("tea", 5_000), ("cup", 1))) == {0: 1_000, 2: 200, 1: 1}
    assert refund_by_item(order, None) == {0: 1_000, 1: 500, 2: 200}


def test_a_refund_plan_carries_the_items_and_totals_after_it():
    order = stored(item(1_000, refunded_fen=0), item(500, sku="cup", refunded_fen=0), refunded_fen=0)
    part = plan_refund(order, (("tea", 400),))
    assert (part.by_item, part.fen, part.refunded_fen, part.everything_refunded) == ({0: 400}, 400, 400, False)
    assert [each["refunded_fen"] for each in part.items] == [400, 0]
    assert order["items"][0]["refunded_fen"] == 0  # the stored order is left as it was
    rest = plan_refund({**order, "items": part.items, "refunded_fen": part.refunded_fen}, None)
    assert (rest.by_item, rest.refunded_fen, rest.everything_refunded) == ({0: 600, 1: 500}, 1_500, True)
    assert not plan_refund({**order, "items": rest.items}, None).by_item


def test_commissions_unfreeze_the_freeze_period_after_confirmation_but_never_past_the_last_time():
    assert unfreeze_time(T0, 7) == T0 + timedelta(days=7)
    almost_too_late = LATEST - timedelta(days=3, hours=1)
    assert unfreeze_time(almost_too_late, 7) == almost_too_late + timedelta(days=3) < LATEST
