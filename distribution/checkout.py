"""The mini-program's own checkout, as pure rules: its settings, its numbers, what a payment must match and
what a refund gives back.

An order placed in the mini-program gets our order number from the buyer and the request's idempotency key
(a retried checkout lands on the same order), and WeChat Pay's `out_trade_no` from the order number: WeChat
Pay takes 6 to 32 characters of `[0-9A-Za-z_-|*]`, which ours need not be, so an order number that does
not fit is mapped (and the mapping stored on the order, since a hash cannot be read back).

A refund names items and quantities (or nothing: all that is left). Its amount is never typed by anyone:
each unit of an item is worth its share of what the item's line was paid, and the shares of every unit of a
line add up to the line exactly, so refunding the units one by one gives back the line to the fen. What is
reserved for refunds under way counts as gone: two refunds can never give back more than was paid.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated

from pydantic import ConfigDict, Field

from distribution.records import Integer, InvalidField, Record, Text, matching

OUT_TRADE_NO = re.compile(r"[0-9A-Za-z_\-|*]{6,32}")
OUT_TRADE_NO_HASH_CHARACTERS = 16
ORDER_NO_PREFIX = "mp."  # an order placed in the mini-program; the "." keeps it from ever passing as an out_trade_no
ORDER_NO_HASH_CHARACTERS = 24
REFUND_NO_PREFIX = "R"
REFUND_NO_HASH_CHARACTERS = 31  # out_refund_no: at most 64 characters; 32 like the order's
MAX_DESCRIPTION_CHARACTERS = 127  # WeChat Pay's limit on a payment's description
SOURCE = "miniapp"  # `checkout.source` of an order placed here; merchant-API orders carry no `checkout`
MAX_CLOSE_MINUTES = 24 * 60
MAX_AUTO_CONFIRM_DAYS = 90

IdempotencyKey = Annotated[Text, Field(max_length=64), matching(
    r"^[0-9A-Za-z_.:-]+$", "must be 1-64 letters, digits, '_', '.', ':' or '-'")]


class CheckoutSettings(Record):
    """How long an unpaid mini-program order is kept, and when a paid one counts as received."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "unpaid_close_minutes": 30, "auto_confirm_days": 7, "description_prefix": "小店",
    }]})

    unpaid_close_minutes: Annotated[Integer, Field(ge=5, le=MAX_CLOSE_MINUTES)] = Field(
        30, description="An order not paid this many minutes after it was placed is closed (at WeChat Pay too) "
                        "and its stock released. WeChat Pay's payment window ends at the same time.")
    auto_confirm_days: Annotated[Integer, Field(ge=1, le=MAX_AUTO_CONFIRM_DAYS)] = Field(
        7, description="A paid order the buyer has not confirmed this many days after payment is confirmed for "
                       "them (the commissions' freeze period then starts). Applies to orders paid from then on.")
    description_prefix: Annotated[Text, Field(max_length=20)] | None = Field(
        None, description="Put before the goods' titles in the description the buyer sees in WeChat Pay, such as "
                          "the shop's name.")


# --- numbers -------------------------------------------------------------------------------------------


def _digest(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def checkout_order_no(member_id: str, idempotency_key: str) -> str:
    """Our order number for the member's checkout under `idempotency_key`: the same for every retry."""
    return ORDER_NO_PREFIX + _digest("order", member_id, idempotency_key)[:ORDER_NO_HASH_CHARACTERS]


def out_trade_no_of(order_no: str) -> str:
    """WeChat Pay's number for the order: the order number itself when WeChat Pay takes it, else its letters
    and digits (for people reading WeChat Pay's records) and a hash of it (for uniqueness)."""
    if OUT_TRADE_NO.fullmatch(order_no):
        return order_no
    readable = re.sub(r"[^0-9A-Za-z]", "", order_no)[: 32 - OUT_TRADE_NO_HASH_CHARACTERS - 1]
    return f"{readable}_{_digest('trade', order_no)[:OUT_TRADE_NO_HASH_CHARACTERS]}"


def out_refund_no_of(order_no: str, idempotency_key: str) -> str:
    """WeChat Pay's number for the merchant's refund of `order_no` under `idempotency_key`."""
    return REFUND_NO_PREFIX + _digest("refund", order_no, idempotency_key)[:REFUND_NO_HASH_CHARACTERS]


def request_hash(wanted: Sequence[tuple[str, int]], *more: object) -> str:
    """What a retry under the same idempotency key must repeat to be one."""
    content = [[[sku, qty] for sku, qty in wanted], *more]
    return _digest(json.dumps(content, sort_keys=True, ensure_ascii=False, default=str))


def payment_description(titles: Sequence[str], prefix: str | None) -> str:
    """What the buyer sees in WeChat Pay: the prefix and the goods' titles, within WeChat Pay's 127 characters."""
    text = "、".join(title.strip() for title in titles if title.strip()) or "商品"
    if prefix:
        text = f"{prefix.strip()} {text}"
    return text if len(text) <= MAX_DESCRIPTION_CHARACTERS else text[: MAX_DESCRIPTION_CHARACTERS - 1] + "…"


# --- a payment against its order -----------------------------------------------------------------------


def payment_problem(order_total_fen: int, expected_mch_id: str, expected_appid: str, total_fen: int,
                    mch_id: str | None, appid: str | None) -> str | None:
    """Why a successful payment cannot pay the order (it is then flagged for the merchant, not applied), or
    None when it matches."""
    if total_fen != order_total_fen:
        return f"paid {total_fen} fen for an order of {order_total_fen} fen"
    if mch_id != expected_mch_id:
        return "paid to another merchant"
    if appid != expected_appid:
        return "paid for another app"
    return None


# --- refunds ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RefundLine:
    item_index: int
    sku: str
    qty: int
    refund_fen: int

    def to_dict(self) -> dict:
        return {"item_index": self.item_index, "sku": self.sku, "qty": self.qty, "refund_fen": self.refund_fen}


def unit_share(paid_fen: int, qty: int, first_unit: int, units: int) -> int:
    """What units `first_unit` .. `first_unit + units - 1` (counted from 0) of a line of `qty` units paid
    `paid_fen` are worth: the shares of all the line's units add up to `paid_fen` exactly."""
    return paid_fen * (first_unit + units) // qty - paid_fen * first_unit // qty


def plan_refund(items: Sequence[Mapping], reserved_qty: Sequence[int], wanted: Sequence[tuple[str, int]] | None,
                ) -> tuple[RefundLine, ...]:
    """The lines of a refund of `wanted` (sku, qty) pairs, or of everything left when None, given the units of
    each item already refunded or being refunded (`reserved_qty`, by item index). InvalidField naming
    `items[i].sku` / `items[i].qty`, or `items` when nothing is left to refund."""
    left = [item["qty"] - reserved for item, reserved in zip(items, reserved_qty, strict=True)]
    if wanted is None:
        asked = {index: units for index, units in enumerate(left) if units > 0}
    else:
        index_of = {item["sku"]: index for index, item in enumerate(items)}
        asked = {}
        for position, (sku, qty) in enumerate(wanted):
            if sku not in index_of:
                raise InvalidField(f"items[{position}].sku", "must be the sku of one of the order's items")
            index = index_of[sku]
            if index in asked:
                raise InvalidField(f"items[{position}].sku", "names the same sku twice")
            if qty > left[index]:
                raise InvalidField(f"items[{position}].qty", f"{left[index]} unit(s) of {sku} are left to refund")
            asked[index] = qty
    if not asked:
        raise InvalidField("items", "nothing is left to refund")
    return tuple(
        RefundLine(index, items[index]["sku"], units,
                   unit_share(items[index]["paid_fen"], items[index]["qty"], reserved_qty[index], units))
        for index, units in sorted(asked.items()))


class RefundItem(Record):
    sku: Annotated[Text, Field(max_length=64)] = Field(description="The sku of one of the order's items.")
    qty: Annotated[Integer, Field(ge=1, le=1_000_000)] = Field(description="How many of its units are refunded.")


class RefundRequest(Record):
    """The merchant gives a mini-program order's money back, all that is left or some items; idempotent by
    `idempotency_key`. The amount is the items' share of what was paid, never typed."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"items": [{"sku": "tea-gift-box", "qty": 1}], "reason": "破损退货", "idempotency_key": "refund-7f3a"},
        {"reason": "买家取消", "idempotency_key": "refund-all-1"},
    ]})

    items: Annotated[tuple[RefundItem, ...], Field(min_length=1, max_length=200)] | None = Field(
        None, description="What is refunded; left out, everything not refunded yet.")
    reason: Annotated[Text, Field(max_length=80)] = Field(description="Why; the buyer sees it in WeChat Pay.")
    idempotency_key: IdempotencyKey = Field(description="The same key again is the same refund, never a second.")

    @property
    def wanted(self) -> list[tuple[str, int]] | None:
        return None if self.items is None else [(item.sku, item.qty) for item in self.items]
