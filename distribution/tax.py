"""Tax figures (个税申报提示): each promoter's income paid out per calendar year (China's), the merchant's
threshold above which a promoter is told to declare it, and promoters who are companies (企业分销商).

Income is what succeeded in leaving the promoter's account in payouts that year: the withdrawn amount,
the fee included (the fee is the promoter's cost, not less income); the fee and the net received are shown
beside it. A company's tax id (统一社会信用代码) is personal data of a kind: it is kept sealed and shown
only masked.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Self

from pydantic import ConfigDict, Field, model_validator

from distribution.calendar import CHINA
from distribution.money import Fen
from distribution.records import InvalidField, Record, Text, matching

# Seed 004: promoters whose income passes 100,000 yuan a year are told to declare it.
DEFAULT_DECLARE_THRESHOLD_FEN = 10_000_000
FIRST_YEAR = 2000
LAST_YEAR = 2100
TAX_ID_PATTERN = r"^[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}$"


class TaxSettings(Record):
    """When a promoter's yearly income is high enough for the shop to tell them to declare it."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"declare_threshold_fen": 10_000_000}]})

    declare_threshold_fen: Annotated[Fen, Field(ge=1)] = Field(
        DEFAULT_DECLARE_THRESHOLD_FEN, description="A promoter whose income paid out in a calendar year (China "
                                                   "time) goes above this many fen is listed and told once that "
                                                   "year to declare it; default 100,000 yuan.")


class TaxpayerKind(StrEnum):
    PERSON = "person"  # 个人分销员
    COMPANY = "company"  # 企业分销商


class TaxProfile(Record):
    """Whether a promoter is a person or a company, and a company's tax id."""

    kind: TaxpayerKind = Field(description="person (the default of every promoter) or company")
    tax_id: Annotated[Text, matching(TAX_ID_PATTERN, "must be an 18-character unified social credit code "
                                                     "(统一社会信用代码)")] | None = Field(
        None, description="a company's unified social credit code; stored sealed, shown masked")

    @model_validator(mode="after")
    def _tax_id_only_for_companies(self) -> Self:
        if self.kind is TaxpayerKind.COMPANY and self.tax_id is None:
            raise InvalidField("tax_id", "is required for a company")
        if self.kind is TaxpayerKind.PERSON and self.tax_id is not None:
            raise InvalidField("tax_id", "is kept only for companies")
        return self


def mask_tax_id(tax_id: str) -> str:
    """91330106****1234: enough to tell companies apart, not enough to use the id."""
    return tax_id[:8] + "*" * max(len(tax_id) - 12, 0) + tax_id[-4:] if len(tax_id) > 12 else "*" * len(tax_id)


def year_bounds(year: int) -> tuple[datetime, datetime]:
    """China's calendar year `year` as [start, end) instants."""
    return datetime(year, 1, 1, tzinfo=CHINA), datetime(year + 1, 1, 1, tzinfo=CHINA)


@dataclass(frozen=True)
class Payout:
    promoter_id: str
    amount_fen: int  # withdrawn: the fee included
    fee_fen: int


@dataclass
class AnnualIncome:
    promoter_id: str
    payouts: int = 0
    income_fen: int = 0
    fee_fen: int = 0

    @property
    def net_fen(self) -> int:
        return self.income_fen - self.fee_fen

    def above(self, settings: TaxSettings) -> bool:
        return self.income_fen > settings.declare_threshold_fen


def annual_incomes(payouts: Iterable[Payout]) -> list[AnnualIncome]:
    """Each promoter's year, highest income first (ties by id, so the order is stable)."""
    incomes: dict[str, AnnualIncome] = {}
    for payout in payouts:
        income = incomes.setdefault(payout.promoter_id, AnnualIncome(payout.promoter_id))
        income.payouts += 1
        income.income_fen += payout.amount_fen
        income.fee_fen += payout.fee_fen
    return sorted(incomes.values(), key=lambda income: (-income.income_fen, income.promoter_id))
