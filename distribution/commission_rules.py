"""The merchant's commission rules (佣金规则), validated as a whole.

Rates are integer basis points (1000 bp = 10%), amounts integer fen. A rule
set is refused when its configured rates could pay out more than `cap_bp` of
an item; fixed amounts cannot be checked against a price in advance, so the
calculation caps them (see `distribution.commission`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from distribution.money import BASIS_POINTS, share_fen
from distribution.records import (
    Check,
    InvalidField,
    Record,
    boolean,
    checked,
    choice,
    integer,
    integers,
    keyed_by_text,
)

MAX_LEVELS = 10
# Deeper chains look like 团队计酬 (pyramid selling) to Chinese regulators.
LEVELS_WITHOUT_LEGAL_RISK = 3


class Trigger(StrEnum):
    PAID = "paid"  # commissions are recorded, frozen, when the order is paid
    CONFIRMED = "confirmed"  # only when the buyer confirms receipt


class RuleKind(StrEnum):
    RATE_BP = "rate_bp"  # a share of the item's paid amount
    FIXED_FEN_PER_UNIT = "fixed_fen_per_unit"  # a sum per unit bought


@dataclass(frozen=True)
class LevelRule:
    """What each level earns on one item: `per_level[0]` is level 1's value."""

    kind: RuleKind
    per_level: tuple[int, ...]

    def wanted_fen(self, level: int, paid_fen: int, qty: int) -> int:
        """Level `level`'s amount before the cap, rates rounded down to the fen."""
        value = self.per_level[level - 1]
        if self.kind is RuleKind.RATE_BP:
            return share_fen(paid_fen, value)
        return value * qty

    def to_dict(self) -> dict[str, list[int]]:
        return {self.kind.value: list(self.per_level)}


def level_rule() -> Check:
    """Check for a product rule written as `{"rate_bp": [...]}` or `{"fixed_fen_per_unit": [...]}`."""
    value_checks = {
        RuleKind.RATE_BP: integers(0, BASIS_POINTS),
        RuleKind.FIXED_FEN_PER_UNIT: integers(0),
    }

    def check(field: str, value: Any) -> LevelRule:
        if isinstance(value, LevelRule):
            # Rules built in code get the same range checks as rules read from JSON.
            value = value.to_dict()
        if not isinstance(value, Mapping) or len(value) != 1:
            raise InvalidField(field, "must be an object with exactly one of rate_bp, fixed_fen_per_unit")
        [(name, per_level)] = value.items()
        kind = choice(RuleKind)(field, name)
        return LevelRule(kind, value_checks[kind](f"{field}.{kind.value}", per_level))

    return check


@dataclass(frozen=True)
class CommissionRules(Record):
    """Levels, rates, product and grade rules, self-purchase, trigger, freeze period and cap.

    Which rule sets an item's amounts, first match wins: the item's sku rule,
    its category rule, the beneficiary's grade rates, the default level rates.
    A product rule thus holds for every grade.

    `self_purchase`: when on and the buyer is a promoter, the buyer is level 1
    of their own purchase, their upline level 2, and so on; when off, the
    buyer earns nothing and their upline is level 1.
    `freeze_days`: days after the buyer confirms receipt before a commission
    settles (becomes withdrawable).
    """

    levels: int = checked(integer(1, MAX_LEVELS), 2)
    acknowledge_legal_risk: bool = checked(boolean(), False)
    level_rates_bp: tuple[int, ...] = checked(integers(0, BASIS_POINTS), (1000, 500))
    sku_rules: dict[str, LevelRule] = checked(keyed_by_text(level_rule()), default_factory=dict)
    category_rules: dict[str, LevelRule] = checked(keyed_by_text(level_rule()), default_factory=dict)
    grade_rates_bp: dict[str, tuple[int, ...]] = checked(keyed_by_text(integers(0, BASIS_POINTS)), default_factory=dict)
    self_purchase: bool = checked(boolean(), False)
    trigger: Trigger = checked(choice(Trigger), Trigger.PAID)
    freeze_days: int = checked(integer(0), 7)
    cap_bp: int = checked(integer(0, BASIS_POINTS), 3000)

    def check_together(self) -> None:
        if self.levels > LEVELS_WITHOUT_LEGAL_RISK and not self.acknowledge_legal_risk:
            raise InvalidField("levels", f"more than {LEVELS_WITHOUT_LEGAL_RISK} levels needs acknowledge_legal_risk")
        self._check_rates("level_rates_bp", self.level_rates_bp)
        for group, product_rules in (("sku_rules", self.sku_rules), ("category_rules", self.category_rules)):
            for key, rule in product_rules.items():
                field = f"{group}.{key}.{rule.kind.value}"
                if rule.kind is RuleKind.RATE_BP:
                    self._check_rates(field, rule.per_level)
                else:
                    self._check_length(field, rule.per_level)
        for grade, rates in self.grade_rates_bp.items():
            self._check_rates(f"grade_rates_bp.{grade}", rates)
        # Beneficiaries of different grades share one item, so the highest rate of each level may meet.
        highest_per_level = [
            max(rates) for rates in zip(self.level_rates_bp, *self.grade_rates_bp.values(), strict=True)
        ]
        self._check_cap("grade_rates_bp", highest_per_level)

    def _check_rates(self, field: str, rates: tuple[int, ...]) -> None:
        self._check_length(field, rates)
        self._check_cap(field, rates)

    def _check_length(self, field: str, per_level: tuple[int, ...]) -> None:
        if len(per_level) != self.levels:
            raise InvalidField(field, f"must have {self.levels} entries, one per level")

    def _check_cap(self, field: str, rates: Sequence[int]) -> None:
        if sum(rates) > self.cap_bp:
            raise InvalidField(field, f"adds up to {sum(rates)} bp, above cap_bp {self.cap_bp}")

    def rule_for(self, sku: str, category: str | None, grade: str | None) -> LevelRule:
        if sku in self.sku_rules:
            return self.sku_rules[sku]
        if category in self.category_rules:
            return self.category_rules[category]
        if grade in self.grade_rates_bp:
            return LevelRule(RuleKind.RATE_BP, self.grade_rates_bp[grade])
        return LevelRule(RuleKind.RATE_BP, self.level_rates_bp)
