"""Merchant API over the money's figures: the daily finance report (reconciliation) and its export, the
promoters' yearly income for tax and its export, and promoters' tax profiles (person or company)."""

from __future__ import annotations

from datetime import datetime, timezone

from distribution.tax import TaxProfile
from handlers.merchant import MerchantHandler
from web.file_answers import CONTENT_TYPES, FILE_FORMATS, FileAnswers
from web.finance_models import (AnnualQuery, AnnualTax, FinanceReport, ReportDay, ReportDays, TaxProfileAnswer,
                                TaxYear)
from web.openapi import Reply, operation

FILE = Reply("The file: CSV (UTF-8 with a byte-order mark) or XLSX", media_types=tuple(CONTENT_TYPES.values()))


class ReconciliationHandler(MerchantHandler):
    @operation("A China day's finance report: money in and out, reversals and debts, against the ledger",
               description="Commissions settled and reversed, payouts by method and their fees, per promoter and in "
                           "total, from the business records and from the day's ledger entries, with every "
                           "difference between them; each transfer-bill payout is also held against WeChat Pay's "
                           "bill (amount and state). `clean` when nothing differs.",
               query=ReportDay, responses={200: Reply("The report", FinanceReport)})
    async def get(self) -> None:
        query = self.parse_query(ReportDay)
        self.write_model(FinanceReport.of(await self.runtime.finance.day_report(query.chosen())))


class ReconciliationFileHandler(MerchantHandler, FileAnswers):
    @operation("The finance report of a range of China days as a file",
               description="Per day, a row per promoter with its figures and differences, then the day's totals "
                           "from the business records and from the ledger. At most 31 days.",
               query=ReportDays, responses={200: FILE})
    async def get(self, file_format: str) -> None:
        query = self.parse_query(ReportDays)
        first, last = query.chosen()
        export = self.runtime.finance_exports.reconciliation(first, last)
        await self.send_export(export, file_format, lambda: self.audit(
            "export.reconciliation", "export", f"reconciliation.{file_format}",
            after={"from": first.isoformat(), "to": last.isoformat()}))


class AnnualTaxHandler(MerchantHandler):
    @operation("Promoters' income paid out in a calendar year, and who is above the declaration threshold",
               description="Income: what succeeded in leaving each promoter's account in payouts that year (China "
                           "time), fees included. The threshold is settings/tax `declare_threshold_fen`; each "
                           "promoter above it is told once a year.",
               query=AnnualQuery, responses={200: Reply("The year", AnnualTax)})
    async def get(self) -> None:
        query = self.parse_query(AnnualQuery)
        annual = await self.runtime.tax.annual(query.chosen())
        self.write_model(AnnualTax.of(annual, query.above_only, query.limit))


class AnnualTaxFileHandler(MerchantHandler, FileAnswers):
    @operation("The annual per-promoter income statement as a file", query=TaxYear, responses={200: FILE})
    async def get(self, file_format: str) -> None:
        year = self.parse_query(TaxYear).chosen()
        await self.send_export(self.runtime.finance_exports.income_statement(year), file_format, lambda: self.audit(
            "export.income_statement", "export", f"income-{year}.{file_format}", after={"year": year}))


class TaxProfileHandler(MerchantHandler):
    @operation("A promoter's tax profile: a person (the default) or a company", errors=(404,),
               responses={200: Reply("The profile", TaxProfileAnswer)})
    async def get(self, member_id: str) -> None:
        await self.member_or_404(member_id)
        self.write_model(TaxProfileAnswer.model_validate(await self.runtime.tax.profile(member_id)))

    @operation("Mark a promoter as a person or a company (企业分销商), with a company's tax id",
               description="The tax id is stored sealed; answers, exports and the audit log show it masked.",
               body=TaxProfile, errors=(404,), responses={200: Reply("The profile as stored", TaxProfileAnswer)})
    async def put(self, member_id: str) -> None:
        profile = self.parse_body(TaxProfile)
        await self.member_or_404(member_id)
        shown, before = await self.runtime.tax.put_profile(member_id, profile, datetime.now(timezone.utc))
        await self.audit("member.tax_profile", "member", member_id, _audited(before), _audited(shown))
        self.write_model(TaxProfileAnswer.model_validate(shown))


def _audited(profile: dict | None) -> dict | None:
    return None if profile is None else {"kind": profile["kind"], "tax_id_masked": profile["tax_id_masked"]}


ROUTES = [
    (r"/api/merchant/v1/finance/reconciliation", ReconciliationHandler),
    (rf"/api/merchant/v1/finance/reconciliation/(?P<file_format>{FILE_FORMATS})", ReconciliationFileHandler),
    (r"/api/merchant/v1/tax/annual", AnnualTaxHandler),
    (rf"/api/merchant/v1/tax/annual/(?P<file_format>{FILE_FORMATS})", AnnualTaxFileHandler),
    (r"/api/merchant/v1/members/(?P<member_id>[^/]+)/tax_profile", TaxProfileHandler),
]
