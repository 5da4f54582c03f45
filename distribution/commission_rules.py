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
from typing import Annotated, Any, Self

from pydantic import ConfigDict, Field, GetCoreSchemaHandler, StrictBool, model_validator
from pydantic_core import CoreSchema, core_schema

from distribution.grades import GradeName
from distribution.money import BasisPoints, Fen, share_fen
from distribution.records import Days, Integer, InvalidField, Record, Text

MAX_LEVELS = 10
# Deeper chains look like 团队计酬 (pyramid selling) to Chinese regulators.
LEVELS_WITHOUT_LEGAL_RISK = 3

ProductKey = Annotated[Text, Field(max_length=64)]  # a sku or a category, as order items name them
LevelRates = Annotated[tuple[BasisPoints, ...], Field(max_length=MAX_LEVELS)]


class Trigger(StrEnum):
    PAID = "paid"  # commissions are recorded, frozen, when the order is paid
    CONFIRMED = "confirmed"  # only when the buyer confirms receipt


class RuleKind(StrEnum):
    RATE_BP = "rate_bp"  # a share of the item's paid amount
    FIXED_FEN_PER_UNIT = "fixed_fen_per_unit"  # a sum per unit bought


@dataclass(frozen=True)
class LevelRule:
    """What each level earns on one item: `per_level[0]` is level 1's value.

    Written `{"rate_bp": [...]}` or `{"fixed_fen_per_unit": [...]}` (a
    `ProductRule`). Built in code it is not checked until it becomes part of
    `CommissionRules`, which checks it like one read from JSON, naming the
    field where it sits.
    """

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

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        written = handler.generate_schema(ProductRule)
        return core_schema.no_info_before_validator_function(
            lambda value: value.to_dict() if isinstance(value, LevelRule) else value,
            core_schema.no_info_after_validator_function(ProductRule.level_rule, written),
            serialization=core_schema.plain_serializer_function_ser_schema(cls.to_dict),
        )


class ProductRule(Record):
    """A product's commission, level 1 first: exactly one of rate_bp and fixed_fen_per_unit."""

    model_config = ConfigDict(json_schema_extra={
        "minProperties": 1, "maxProperties": 1,
        "examples": [{"rate_bp": [800, 400]}, {"fixed_fen_per_unit": [500, 100]}],
    })

    rate_bp: LevelRates = Field(
        None, description="A share of the item's paid amount per level, in basis points (1000 = 10%).")
    fixed_fen_per_unit: Annotated[tuple[Fen, ...], Field(max_length=MAX_LEVELS)] = Field(
        None, description="A sum per unit bought per level, in fen; the cap_bp of the item still applies.")

    @model_validator(mode="before")
    @classmethod
    def _exactly_one_kind(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and (len(data) != 1 or next(iter(data)) not in set(RuleKind)):
            raise ValueError(f"must be an object with exactly one of {', '.join(RuleKind)}")
        return data

    def level_rule(self) -> LevelRule:
        if self.rate_bp is not None:
            return LevelRule(RuleKind.RATE_BP, self.rate_bp)
        return LevelRule(RuleKind.FIXED_FEN_PER_UNIT, self.fixed_fen_per_unit)


class CommissionRules(Record):
    """Levels, rates, product and grade rules, self-purchase, trigger, freeze period and cap.

    Which rule sets an item's amounts, first match wins: the item's sku rule,
    its category rule, the beneficiary's grade rates, the default level rates.
    A product rule thus holds for every grade. Rates that could pay out more
    than cap_bp of an item are refused; fixed amounts are cut to the cap when
    an order is paid.
    """

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "levels": 2, "acknowledge_legal_risk": False, "level_rates_bp": [1000, 500],
        "sku_rules": {"tea-gift-box": {"fixed_fen_per_unit": [800, 300]}},
        "category_rules": {"drinks": {"rate_bp": [800, 400]}},
        "grade_rates_bp": {"gold": [1500, 700]},
        "self_purchase": True, "trigger": "confirmed", "freeze_days": 7, "cap_bp": 3000,
    }]})

    levels: Annotated[Integer, Field(ge=1, le=MAX_LEVELS)] = Field(
        2, description=f"How many uplines earn on an order: 1 for the nearest only. More than "
                       f"{LEVELS_WITHOUT_LEGAL_RISK} needs acknowledge_legal_risk.")
    acknowledge_legal_risk: StrictBool = Field(
        False, description=f"The merchant accepts that more than {LEVELS_WITHOUT_LEGAL_RISK} levels can be judged "
                           f"pyramid selling (团队计酬) under Chinese law.")
    level_rates_bp: LevelRates = Field(
        (1000, 500), description="The default rate per level, level 1 first, in basis points (1000 = 10%): one "
                                 "entry per level.")
    sku_rules: dict[ProductKey, LevelRule] = Field(
        default_factory=dict, description="Rules for single products, by sku; they come before every other rule.")
    category_rules: dict[ProductKey, LevelRule] = Field(
        default_factory=dict, description="Rules for product categories, by category; they come after sku rules.")
    grade_rates_bp: dict[GradeName, LevelRates] = Field(
        default_factory=dict, description="Rates per level for promoters of a grade, by grade name; a promoter of "
                                          "another grade earns level_rates_bp.")
    self_purchase: StrictBool = Field(
        False, description="Whether a promoter earns level 1 on their own purchases (their upline then earns level "
                           "2, and so on); if not, the buyer earns nothing and their upline is level 1.")
    trigger: Trigger = Field(
        Trigger.PAID, description="When commissions are recorded, frozen: when the order is paid, or only when the "
                                  "buyer confirms receipt.")
    freeze_days: Days = Field(
        7, description="Days after the buyer confirms receipt before a commission settles and can be withdrawn.")
    cap_bp: BasisPoints = Field(
        3000, description="The most an item pays out in commissions, all levels together, in basis points of its "
                          "paid amount.")

    @model_validator(mode="after")
    def _rates_fit_levels_and_cap(self) -> Self:
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
        return self

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
