"""Commission calculation (佣金计算) and its pro-rata reversal on refunds.

The base is each item's paid amount in fen. Every amount is rounded down to
the fen, so the merchant never pays a fraction of a fen it did not promise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from pydantic import ConfigDict, Field

from distribution.commission_rules import CommissionRules, ProductKey
from distribution.money import Fen, share_fen
from distribution.records import Integer, Record, Text

MAX_QTY = 1_000_000


class OrderItem(Record):
    """One line of an order, as the shop's system reports it."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"sku": "tea-gift-box", "title": "龙井茶礼盒", "qty": 2, "paid_fen": 19_800, "category": "drinks"},
    ]})

    sku: ProductKey = Field(description="The shop's product code; commission rules by sku refer to it.")
    title: Annotated[Text, Field(max_length=200)] = Field(description="The product's name, as the buyer saw it.")
    qty: Annotated[Integer, Field(ge=1, le=MAX_QTY)] = Field(description="How many units were bought.")
    paid_fen: Fen = Field(description="What the buyer paid for this line, in fen, after discounts: the base of "
                                      "its commissions.")
    category: ProductKey | None = Field(
        None, description="The product's category; commission rules by category refer to it.")


class CommissionMode(StrEnum):
    """Which rules an order was paid under, and so what a commission's `level` means."""

    LEVEL = "level"  # the commission rules: level n is the buyer's n-th beneficiary up the upline chain
    CHAIN_MOVE = "chain_move"  # 链动2+1 (`distribution.chain_move`): the level is the reward's kind


@dataclass(frozen=True)
class CommissionLine:
    """One beneficiary's commission on one item; `(item_index, level)` identifies it within an order."""

    item_index: int
    sku: str
    beneficiary_id: str
    level: int  # 1 is the nearest beneficiary
    amount_fen: int
    item_paid_fen: int  # the base, which refunds are measured against


def beneficiary_chain(
    buyer_id: str, buyer_ancestor_ids: Sequence[str], buyer_is_promoter: bool, rules: CommissionRules
) -> tuple[str, ...]:
    """Who earns on the buyer's order, nearest first: the chain to snapshot onto the order when it is created."""
    chain = (buyer_id, *buyer_ancestor_ids) if rules.self_purchase and buyer_is_promoter else tuple(buyer_ancestor_ids)
    return chain[: rules.levels]


def compute_commissions(
    items: Sequence[OrderItem],
    chain: Sequence[str],
    rules: CommissionRules,
    grades_by_member: Mapping[str, str],
) -> list[CommissionLine]:
    """Every commission of an order: one line per item and beneficiary with a positive amount.

    The cap bounds the sum of an item's lines to `cap_bp` of its paid amount,
    rounded down; nearer levels are served first, so when fixed amounts hit the
    cap it is the farthest levels that shrink.
    """
    beneficiaries = list(enumerate(chain[: rules.levels], start=1))
    lines = []
    for item_index, item in enumerate(items):
        room_fen = share_fen(item.paid_fen, rules.cap_bp)
        for level, beneficiary_id in beneficiaries:
            rule = rules.rule_for(item.sku, item.category, grades_by_member.get(beneficiary_id))
            amount_fen = min(rule.wanted_fen(level, item.paid_fen, item.qty), room_fen)
            room_fen -= amount_fen
            if amount_fen > 0:
                lines.append(CommissionLine(item_index, item.sku, beneficiary_id, level, amount_fen, item.paid_fen))
    return lines


def refund_share(
    line_amount_fen: int, item_paid_fen: int, refunded_fen_total_before: int, refunded_fen_now: int
) -> int:
    """The fen of a commission line to cancel (or claw back) for a refund of `refunded_fen_now` of its item.

    Computed from cumulative refunds, floor(amount * refunded_after / paid) -
    floor(amount * refunded_before / paid), so the shares of any sequence of
    partial refunds add up to exactly the line's amount once the item is
    fully refunded: rounding never loses or leaves a fen.
    """
    refunded_after = refunded_fen_total_before + refunded_fen_now
    if refunded_fen_total_before < 0 or refunded_fen_now < 0 or refunded_after > item_paid_fen:
        raise ValueError(
            f"refund of {refunded_fen_now} after {refunded_fen_total_before} does not fit an item paid {item_paid_fen}"
        )
    if item_paid_fen == 0:
        return 0

    def cancelled_once(refunded_fen: int) -> int:
        return line_amount_fen * refunded_fen // item_paid_fen

    return cancelled_once(refunded_after) - cancelled_once(refunded_fen_total_before)
