"""The finance exports: the reconciliation of a range of days, and the annual per-promoter income statement,
each as rows under one header (`services.export_files` writes them as CSV or XLSX).

Reconciliation: per day, a row per promoter with that day's figures and their differences, then the day's
totals as the business records tell them and as the ledger does. Income statement: a row per promoter paid
in the year. Neither carries a tax id unmasked, an openid or any sealed field.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from typing import Any

from distribution.finance import DayReport, Figures
from distribution.tax import TaxpayerKind
from distribution.withdrawals import WithdrawalMethod
from services.export_files import Cell, Column
from services.exports import Export
from services.finance import FinanceService
from services.tax import TaxService
from stores.exports import ExportStore

BUSINESS_TOTAL = "合计（业务记录）"
LEDGER_TOTAL = "合计（账本）"
KIND_WORDS = {TaxpayerKind.PERSON.value: "个人", TaxpayerKind.COMPANY.value: "企业"}
PROMOTER_TITLES = {"promoter_id": "推广员ID", "nickname": "推广员昵称"}
COUNTED = frozenset({"payouts"})


def _columns(titles: dict[str, str]) -> tuple[Column, ...]:
    """A column per field of the rows, titled and in the order given: amounts (`*_fen`) in yuan, the counted
    ones as counts, the rest as text."""
    return tuple(Column(title, lambda row, name=name: row.get(name),
                        Cell.YUAN if name.endswith("_fen") else Cell.COUNT if name in COUNTED else Cell.TEXT)
                 for name, title in titles.items())


RECONCILIATION_COLUMNS = _columns({
    "day": "日期", **PROMOTER_TITLES, "settled_fen": "结算佣金（元）", "cancelled_fen": "取消佣金（元）",
    "clawed_back_fen": "追回佣金（元）", "wechat_fen": "打款·微信零钱（元）", "bank_fen": "打款·银行卡（元）",
    "fee_fen": "手续费（元）", "debt_fen": "日终欠款（元）", "differences": "差异"})
INCOME_COLUMNS = _columns({
    "year": "年度", **PROMOTER_TITLES, "kind": "类型", "tax_id_masked": "税号（脱敏）", "payouts": "打款笔数",
    "income_fen": "年度收入（元）", "fee_fen": "手续费（元）", "net_fen": "实收（元）", "above": "超过申报提示线"})


def _figures(figures: Figures) -> dict[str, int]:
    return {"settled_fen": figures.settled_fen, "cancelled_fen": figures.cancelled_fen,
            "clawed_back_fen": figures.clawed_back_fen, "fee_fen": figures.fee_fen,
            "wechat_fen": figures.paid_by_method.get(WithdrawalMethod.WECHAT_BALANCE.value, 0),
            "bank_fen": figures.paid_by_method.get(WithdrawalMethod.BANK.value, 0)}


def report_rows(report: DayReport, nicknames: dict[str, str | None]) -> list[dict[str, Any]]:
    """A day's rows: each promoter's, then the two totals."""
    day = report.day.isoformat()
    rows = [{"day": day, "promoter_id": row.promoter_id, "nickname": nicknames.get(row.promoter_id),
             **_figures(row.figures), "debt_fen": row.debt_fen,
             "differences": "；".join(str(each) for each in row.differences)} for row in report.promoters]
    rows.append({"day": day, "promoter_id": BUSINESS_TOTAL, **_figures(report.figures), "debt_fen": report.debt_fen,
                 "differences": f"{len(report.differences)} 处差异" if report.differences else "无差异"})
    rows.append({"day": day, "promoter_id": LEDGER_TOTAL, **_figures(report.ledger)})
    return rows


class FinanceExports:
    def __init__(self, finance: FinanceService, tax: TaxService, names: ExportStore):
        self.finance = finance
        self.tax = tax
        self.names = names

    def reconciliation(self, first: date, last: date) -> Export:
        return Export("reconciliation", RECONCILIATION_COLUMNS, self._reconciliation_rows(first, last))

    def income_statement(self, year: int) -> Export:
        return Export(f"income-{year}", INCOME_COLUMNS, self._income_rows(year))

    async def _reconciliation_rows(self, first: date, last: date) -> AsyncIterator[list[list[Any]]]:
        async for report in self.finance.reports(first, last):
            nicknames = await self.names.nicknames({row.promoter_id for row in report.promoters})
            yield _cells(RECONCILIATION_COLUMNS, report_rows(report, nicknames))

    async def _income_rows(self, year: int) -> AsyncIterator[list[list[Any]]]:
        annual = await self.tax.annual(year)
        yield _cells(INCOME_COLUMNS, [
            {"year": year, "promoter_id": row.income.promoter_id, "nickname": row.nickname,
             "kind": KIND_WORDS[row.kind.value], "tax_id_masked": row.tax_id_masked, "payouts": row.income.payouts,
             "income_fen": row.income.income_fen, "fee_fen": row.income.fee_fen, "net_fen": row.income.net_fen,
             "above": "是" if row.above_threshold else "否"} for row in annual.rows])


def _cells(columns: tuple[Column, ...], rows: list[dict[str, Any]]) -> list[list[Any]]:
    return [[column.value(row) for column in columns] for row in rows]
