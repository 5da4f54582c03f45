"""The console's finance pages: the daily finance report (对账, a day picker, differences highlighted, export
links) and the yearly income per promoter for tax (税务), and their exports."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from distribution.staff import Permission
from handlers.console.base import ConsoleHandler
from handlers.console.exports import ExportHandler
from services.exports import Export
from services.finance_exports import FinanceExports
from web.file_answers import FILE_FORMATS
from web.finance_models import AnnualQuery, ReportDay, ReportDays, TaxYear
from web.paging import Query

FIGURES = (("settled_fen", "结算佣金（入账）"), ("cancelled_fen", "取消佣金（结算前退款）"),
           ("clawed_back_fen", "追回佣金（结算后退款）"), ("paid_fen", "打款（到账）"), ("fee_fen", "手续费"))
METHODS = {"wechat_balance": "微信零钱", "bank": "银行卡"}
WHAT = {"settled": "结算", "cancelled": "取消", "clawed_back": "追回", "paid": "打款", "fee": "手续费",
        "bill": "微信支付转账单", "balance": "日终余额"}


class FinancePage(ConsoleHandler):
    permission = Permission.LEDGER

    async def get(self) -> None:
        day = self.parse_query(ReportDay).chosen()
        report = await self.runtime.finance.day_report(day)
        self.render_page("finance.html", report=report, day=day.isoformat(), figures=FIGURES, methods=METHODS,
                         what=WHAT)


class TaxPage(ConsoleHandler):
    permission = Permission.LEDGER

    async def get(self) -> None:
        query = self.parse_query(AnnualQuery)
        annual = await self.runtime.tax.annual(query.chosen())
        rows = [row for row in annual.rows if row.above_threshold or not query.above_only][:query.limit]
        self.render_page("tax.html", annual=annual, rows=rows, above_only=query.above_only)


# Each finance export: its filters, and the export they select.
EXPORTS: dict[str, tuple[type[Query], Callable[[FinanceExports, Any], Export]]] = {
    "reconciliation": (ReportDays, lambda exports, query: exports.reconciliation(*query.chosen())),
    "income_statement": (TaxYear, lambda exports, query: exports.income_statement(query.chosen())),
}


class FinanceExportHandler(ExportHandler):
    kinds = EXPORTS

    def exporter(self) -> FinanceExports:
        return self.runtime.finance_exports


ROUTES = [
    (r"/admin/finance", FinancePage),
    (r"/admin/tax", TaxPage),
    (rf"/admin/export/(?P<kind>{'|'.join(EXPORTS)})\.(?P<file_format>{FILE_FORMATS})", FinanceExportHandler),
]
