"""The checkout's pure rules: numbers, what a payment must match, what a refund gives back."""

from __future__ import annotations

import pytest

from distribution.checkout import (
    OUT_TRADE_NO,
    CheckoutSettings,
    RefundRequest,
    checkout_order_no,
    out_refund_no_of,
    out_trade_no_of,
    payment_description,
    payment_problem,
    plan_refund,
    request_hash,
    unit_share,
)
from distribution.orders import ORDER_NO
from distribution.records import InvalidField

ITEMS = [{"sku": "tea", "qty": 3, "paid_fen": 1_000}, {"sku": "cup", "qty": 1, "paid_fen": 499}]


def test_a_checkout_order_number_is_the_same_for_a_retry_and_differs_by_buyer_and_key():
    first = checkout_order_no("m1", "key-1")
    assert first == checkout_order_no("m1", "key-1")
    assert len({first, checkout_order_no("m2", "key-1"), checkout_order_no("m1", "key-2")}) == 3
    assert ORDER_NO.fullmatch(first) and "." in first


@pytest.mark.parametrize("order_no", ["mp.0123456789abcdef01234567", "SO-2026.05.01-0001", "a" * 64, "x.y"])
def test_out_trade_no_is_what_wechat_pay_takes_and_distinct(order_no):
    mapped = out_trade_no_of(order_no)
    assert OUT_TRADE_NO.fullmatch(mapped)
    assert mapped != out_trade_no_of(order_no + "1")


def test_an_order_number_wechat_pay_takes_is_its_own_out_trade_no():
    assert out_trade_no_of("SO-20260501_0001") == "SO-20260501_0001"
    assert out_trade_no_of("short") != "short"  # under 6 characters


def test_out_refund_no_is_per_order_and_key():
    first = out_refund_no_of("mp.1", "r1")
    assert OUT_TRADE_NO.fullmatch(first)
    assert len({first, out_refund_no_of("mp.1", "r2"), out_refund_no_of("mp.2", "r1")}) == 3


def test_the_request_hash_tells_bodies_apart():
    assert request_hash([("tea", 1)], None) == request_hash([("tea", 1)], None)
    assert request_hash([("tea", 1)], None) != request_hash([("tea", 2)], None)
    assert request_hash([("tea", 1)], None) != request_hash([("tea", 1)], {"name": "李"})


def test_the_payment_description_fits_wechat_pay():
    assert payment_description(["龙井", "茶杯"], "小店") == "小店 龙井、茶杯"
    assert payment_description([" "], None) == "商品"
    long = payment_description(["茶" * 200], None)
    assert len(long) == 127 and long.endswith("…")


def test_a_payment_must_match_the_order_merchant_and_app():
    assert payment_problem(1_000, "mch", "app", 1_000, "mch", "app") is None
    assert "999" in payment_problem(1_000, "mch", "app", 999, "mch", "app")
    assert payment_problem(1_000, "mch", "app", 1_000, "other", "app") == "paid to another merchant"
    assert payment_problem(1_000, "mch", "app", 1_000, "mch", None) == "paid for another app"


def test_unit_shares_add_up_to_the_line_exactly():
    assert [unit_share(1_000, 3, unit, 1) for unit in range(3)] == [333, 333, 334]
    assert unit_share(1_000, 3, 0, 3) == 1_000
    assert unit_share(1_000, 3, 1, 2) == 667


def test_a_refund_of_some_units_gives_back_their_share():
    (line,) = plan_refund(ITEMS, [0, 0], [("tea", 1)])
    assert (line.item_index, line.sku, line.qty, line.refund_fen) == (0, "tea", 1, 333)
    (second,) = plan_refund(ITEMS, [1, 0], [("tea", 2)])
    assert second.refund_fen == 667  # the line's last units take what is left: 333 + 667 = 1000


def test_a_whole_refund_takes_whatever_is_left():
    lines = plan_refund(ITEMS, [1, 0], None)
    assert [(line.sku, line.qty, line.refund_fen) for line in lines] == [("tea", 2, 667), ("cup", 1, 499)]


@pytest.mark.parametrize("reserved, wanted, field", [
    ([0, 0], [("mug", 1)], "items[0].sku"),
    ([2, 0], [("tea", 2)], "items[0].qty"),
    ([0, 0], [("cup", 1), ("cup", 1)], "items[1].sku"),
    ([3, 1], None, "items"),
])
def test_a_refund_never_gives_back_more_than_is_left(reserved, wanted, field):
    with pytest.raises(InvalidField) as error:
        plan_refund(ITEMS, reserved, wanted)
    assert error.value.field == field


def test_settings_and_refund_requests_are_bounded():
    assert CheckoutSettings().unpaid_close_minutes == 30 and CheckoutSettings().auto_confirm_days == 7
    with pytest.raises(InvalidField) as error:
        CheckoutSettings.from_dict({"unpaid_close_minutes": 0})
    assert error.value.field == "unpaid_close_minutes"
    with pytest.raises(InvalidField) as error:
        RefundRequest.from_dict({"reason": "x", "idempotency_key": "bad key"})
    assert error.value.field == "idempotency_key"
    assert RefundRequest.from_dict({"reason": "x", "idempotency_key": "k"}).wanted is None
