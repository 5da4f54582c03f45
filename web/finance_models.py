"""What the finance and tax endpoints take and answer, declared once (see `web.models`)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Self

from pydantic import Field

from distribution.calendar import CHINA
from distribution.errors import Invalid
from distribution.finance import DayReport, Difference, Figures, PromoterDay
from distribution.tax import FIRST_YEAR, LAST_YEAR, TaxpayerKind
from services.tax import AnnualList, AnnualRow
from web.models import Answer, Fen, Time
from web.pages import OrderDay
from web.paging import Query

# Each day of a range is a report of its own, with WeChat Pay asked about each of its payouts.
MAX_REPORT_DAYS = 31
MAX_ANNUAL_ITEMS = 1000
Year = Annotated[int, Field(ge=FIRST_YEAR, le=LAST_YEAR)]


def yesterday() -> date:
    return datetime.now(CHINA).date() - timedelta(days=1)


class ReportDay(Query):
    day: OrderDay | None = Field(None, description="a China day (UTC+8); default yesterday")

    def chosen(self) -> date:
        return self.day or yesterday()


class ReportDays(Query):
    first_day: OrderDay | None = Field(None, alias="from", description="the first China day; default: to")
    last_day: OrderDay | None = Field(None, alias="to", description="the last China day; default yesterday (or "
                                                                    "from, when that is later)")

    def chosen(self) -> tuple[date, date]:
        last = self.last_day or max(yesterday(), self.first_day or date.min)
        first = self.first_day or last
        if first > last:
            raise Invalid("from must not be after to", field="from")
        if (last - first).days >= MAX_REPORT_DAYS:
            raise Invalid(f"a reconciliation spans at most {MAX_REPORT_DAYS} days", field="from")
        return first, last


class TaxYear(Query):
    year: Year | None = Field(None, description="a calendar year in China's time; default this year")

    def chosen(self) -> int:
        return self.year or datetime.now(CHINA).year


class AnnualQuery(TaxYear):
    above_only: bool = Field(False, description="only promoters above the threshold")
    limit: int = Field(100, ge=1, le=MAX_ANNUAL_ITEMS, description="how many items at most")


class FinanceFigures(Answer):
    settled_fen: Fen = Field(description="money in: commissions that became withdrawable")
    cancelled_fen: Fen = Field(description="refunds' shares of commissions still frozen")
    clawed_back_fen: Fen = Field(description="refunds' shares of commissions already settled")
    paid_fen: Fen = Field(description="money out: what promoters received")
    fee_fen: Fen = Field(description="fees kept out of payouts")
    paid_by_method: dict[str, int] = Field(description="paid_fen by withdrawal method (wechat_balance, bank)")

    @classmethod
    def of(cls, figures: Figures) -> Self:
        return cls(settled_fen=figures.settled_fen, cancelled_fen=figures.cancelled_fen,
                   clawed_back_fen=figures.clawed_back_fen, paid_fen=figures.paid_fen, fee_fen=figures.fee_fen,
                   paid_by_method=dict(figures.paid_by_method))


class FinanceDifference(Answer):
    what: str = Field(description="a figure (settled, cancelled, clawed_back, paid, fee), bill (WeChat Pay's "
                                  "transfer bill) or balance (the promoter's available at the day's end)")
    ref: str = Field(description="the commission's or the withdrawal's id")
    promoter_id: str | None
    ours_fen: int | None = Field(description="the business record's amount (a balance: the stored account's)")
    theirs_fen: int | None = Field(description="the ledger's amount, or WeChat Pay's")
    problem: str

    @classmethod
    def of(cls, difference: Difference) -> Self:
        return cls.model_validate(difference, from_attributes=True)


class PromoterFinance(Answer):
    promoter_id: str
    figures: FinanceFigures
    debt_fen: Fen = Field(description="how far the promoter's available balance was below zero at the day's end")
    differences: list[FinanceDifference]

    @classmethod
    def of(cls, row: PromoterDay) -> Self:
        return cls(promoter_id=row.promoter_id, figures=FinanceFigures.of(row.figures), debt_fen=row.debt_fen,
                   differences=[FinanceDifference.of(each) for each in row.differences])


class FinanceReport(Answer):
    """A China day's money, as the business records tell it and as the ledger does, and where they differ."""

    day: date
    clean: bool = Field(description="no difference: the records, the ledger and WeChat Pay's bills agree")
    figures: FinanceFigures = Field(description="the business records' figures")
    ledger: FinanceFigures = Field(description="the ledger's figures for the same day")
    debt_fen: Fen = Field(description="the promoters' debts at the day's end, added up")
    bills_checked: int = Field(description="transfer bills held against WeChat Pay's record")
    promoters: list[PromoterFinance]
    differences: list[FinanceDifference]

    @classmethod
    def of(cls, report: DayReport) -> Self:
        return cls(day=report.day, clean=report.clean, figures=FinanceFigures.of(report.figures),
                   ledger=FinanceFigures.of(report.ledger), debt_fen=report.debt_fen,
                   bills_checked=report.bills_checked, promoters=[PromoterFinance.of(row) for row in report.promoters],
                   differences=[FinanceDifference.of(each) for each in report.differences])


class AnnualIncomeItem(Answer):
    member_id: str
    nickname: str | None
    kind: TaxpayerKind
    tax_id_masked: str | None = Field(description="a company's tax id, masked")
    payouts: int = Field(description="payouts that succeeded in the year")
    income_fen: Fen = Field(description="withdrawn in those payouts, fees included")
    fee_fen: Fen
    net_fen: Fen = Field(description="what the promoter received")
    above_threshold: bool = Field(description="income_fen is above the merchant's declare_threshold_fen")

    @classmethod
    def of(cls, row: AnnualRow) -> Self:
        income = row.income
        return cls(member_id=income.promoter_id, nickname=row.nickname, kind=row.kind,
                   tax_id_masked=row.tax_id_masked, payouts=income.payouts, income_fen=income.income_fen,
                   fee_fen=income.fee_fen, net_fen=income.net_fen, above_threshold=row.above_threshold)


class AnnualTax(Answer):
    """Every promoter paid in a calendar year (China time), highest income first."""

    year: int
    threshold_fen: Fen = Field(description="settings/tax declare_threshold_fen")
    promoters: int = Field(description="how many promoters were paid in the year")
    above_count: int = Field(description="how many are above the threshold")
    items: list[AnnualIncomeItem] = Field(description="the first `limit` of them (the export holds all)")

    @classmethod
    def of(cls, annual: AnnualList, above_only: bool, limit: int) -> Self:
        rows = [row for row in annual.rows if row.above_threshold or not above_only]
        return cls(year=annual.year, threshold_fen=annual.threshold_fen, promoters=len(annual.rows),
                   above_count=sum(1 for row in annual.rows if row.above_threshold),
                   items=[AnnualIncomeItem.of(row) for row in rows[:limit]])


class TaxProfileAnswer(Answer):
    member_id: str
    kind: TaxpayerKind
    tax_id_masked: str | None = Field(description="the tax id, masked: it is stored sealed")
    updated_at: Time | None
