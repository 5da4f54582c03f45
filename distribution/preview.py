"""The commission preview (佣金预览): who would earn what on one item under candidate rules, before they are saved.

The merchant describes an order item and a buyer's chain (the buyer, then
their uplines nearest first, each with a grade or none); the preview runs the
very calculation a paid order runs (`beneficiary_chain`, then
`compute_commissions`) on placeholder members, so it cannot drift from what
orders pay.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import ConfigDict, Field, StrictBool

from distribution.commission import MAX_QTY, OrderItem, beneficiary_chain, compute_commissions
from distribution.commission_rules import MAX_LEVELS, CommissionRules, ProductKey, RuleKind
from distribution.grades import GradeName
from distribution.money import Fen, share_fen
from distribution.records import Integer, Record

BUYER = "buyer"
PREVIEW_TITLE = "佣金预览"


def placeholder(distance: int) -> str:
    """Who stands `distance` steps up from the buyer: the buyer themselves at 0, `upline_1` for their upline, ..."""
    return f"upline_{distance}" if distance else BUYER


class PreviewOrder(Record):
    """One order item and the buyer's chain, as the preview takes them."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "paid_fen": 10_000, "qty": 1, "sku": "tea-gift-box", "category": "drinks", "buyer_is_promoter": False,
        "buyer_grade": None, "upline_grades": ["gold", None],
    }]})

    paid_fen: Fen = Field(description="What the buyer paid for the item, in fen: the base of its commissions.")
    qty: Annotated[Integer, Field(ge=1, le=MAX_QTY)] = Field(
        1, description="Units bought: fixed amounts are per unit.")
    sku: ProductKey = Field("item", description="The item's sku: a sku rule naming it applies first.")
    category: ProductKey | None = Field(None, description="The item's category: a category rule naming it applies "
                                                          "when no sku rule does.")
    buyer_is_promoter: StrictBool = Field(
        False, description="Whether the buyer may be an upline themselves (with self_purchase they earn level 1).")
    buyer_grade: GradeName | None = Field(None, description="The buyer's grade, when they earn as a promoter.")
    upline_grades: Annotated[tuple[GradeName | None, ...], Field(max_length=MAX_LEVELS)] = Field(
        (None, None), description="The buyer's uplines, nearest first, each by grade (null: no grade); as many "
                                  "entries as the buyer has uplines.")


class CommissionPreviewRequest(PreviewOrder):
    """Candidate commission rules, and the order item and chain to preview them on."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "rules": {"levels": 2, "level_rates_bp": [1000, 500], "grade_rates_bp": {"gold": [1500, 700]}},
        "paid_fen": 10_000, "qty": 1, "sku": "tea-gift-box", "buyer_is_promoter": False, "upline_grades": ["gold", None],
    }]})

    rules: CommissionRules = Field(description="The commission rules being edited, as PUT would store them.")


@dataclass(frozen=True)
class PreviewLine:
    """What one beneficiary earns: `wanted_fen` is the rule's amount, `amount_fen` what the cap leaves of it."""

    level: int
    distance: int  # from the buyer: 0 is the buyer themselves, 1 their upline, ...
    grade: str | None
    rule_kind: RuleKind
    rule_value: int  # basis points, or fen per unit
    wanted_fen: int
    amount_fen: int

    @property
    def beneficiary(self) -> str:
        return placeholder(self.distance)

    @property
    def capped(self) -> bool:
        return self.amount_fen < self.wanted_fen


@dataclass(frozen=True)
class CommissionPreview:
    paid_fen: int
    cap_fen: int
    lines: tuple[PreviewLine, ...]  # one per beneficiary, nearest first, earning or not

    @property
    def total_fen(self) -> int:
        return sum(line.amount_fen for line in self.lines)


def preview_commissions(rules: CommissionRules, order: PreviewOrder) -> CommissionPreview:
    placeholders = tuple(placeholder(distance) for distance in range(len(order.upline_grades) + 1))
    grades = dict(zip(placeholders, (order.buyer_grade, *order.upline_grades)))
    grades_by_member = {member: grade for member, grade in grades.items() if grade is not None}
    item = OrderItem(sku=order.sku, title=PREVIEW_TITLE, qty=order.qty, paid_fen=order.paid_fen,
                     category=order.category)
    chain = beneficiary_chain(BUYER, placeholders[1:], order.buyer_is_promoter, rules)
    earned = {line.level: line.amount_fen for line in compute_commissions([item], chain, rules, grades_by_member)}
    lines = []
    for level, beneficiary in enumerate(chain, start=1):
        rule = rules.rule_for(item.sku, item.category, grades_by_member.get(beneficiary))
        lines.append(PreviewLine(
            level=level, distance=placeholders.index(beneficiary), grade=grades[beneficiary], rule_kind=rule.kind,
            rule_value=rule.per_level[level - 1], wanted_fen=rule.wanted_fen(level, item.paid_fen, item.qty),
            amount_fen=earned.get(level, 0),
        ))
    return CommissionPreview(paid_fen=order.paid_fen, cap_fen=share_fen(order.paid_fen, rules.cap_bp),
                             lines=tuple(lines))
