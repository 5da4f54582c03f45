"""The console's exports (导出): members, orders, commissions, ledger entries, withdrawals and the promoters'
daily stats as CSV or XLSX, with the filters of their lists.

Both formats stream (`web.file_answers`): memory holds a batch of rows, however long the export.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Self

from pydantic import Field, model_validator

from distribution.binding import PromoterStatus
from distribution.grades import MAX_GRADE_NAME_LENGTH, GradeSettings
from distribution.orders import OrderStatus
from distribution.records import InvalidField
from distribution.staff import Permission
from distribution.withdrawals import WithdrawalStatus
from handlers.console.base import ConsoleHandler
from services.commissions import CommissionStatus
from services.exports import LABELS, Export, ExportService
from web.file_answers import FILE_FORMATS, FileAnswers
from web.pages import OrderDay, OrdersQuery
from web.paging import Query

MemberId = Annotated[str, Field(max_length=64, description="only this promoter's")]


class ExportDays(Query):
    """China days (UTC+8), both included, of when each row happened: joined, created, booked, requested."""

    first_day: OrderDay | None = Field(None, alias="from")
    last_day: OrderDay | None = Field(None, alias="to")

    @model_validator(mode="after")
    def _days_in_order(self) -> Self:
        if self.first_day and self.last_day and self.first_day > self.last_day:
            raise InvalidField("from", "must not be after to")
        return self


class MembersExport(ExportDays):
    promoter_status: PromoterStatus | None = None
    frozen: bool | None = None
    grade: str | None = Field(None, max_length=MAX_GRADE_NAME_LENGTH)


class CommissionsExport(ExportDays):
    status: CommissionStatus | None = None
    member_id: MemberId | None = None
    order_no: str | None = Field(None, max_length=64)


class LedgerExport(ExportDays):
    member_id: MemberId | None = None


class WithdrawalsExport(ExportDays):
    status: WithdrawalStatus | None = None
    member_id: MemberId | None = None


class DailyStatsExport(ExportDays):
    member_id: MemberId | None = None


# Each kind: its filters (the orders list's own for orders), and the export they select.
EXPORTS: dict[str, tuple[type[Query], Callable[[ExportService, Any], Export]]] = {
    "members": (MembersExport, lambda exports, query: exports.members(
        query.promoter_status, query.frozen, query.grade, query.first_day, query.last_day)),
    "orders": (OrdersQuery, lambda exports, query: exports.orders(query.selected())),
    "commissions": (CommissionsExport, lambda exports, query: exports.commissions(
        query.status, query.member_id, query.order_no, query.first_day, query.last_day)),
    "ledger": (LedgerExport, lambda exports, query: exports.ledger(query.member_id, query.first_day, query.last_day)),
    "withdrawals": (WithdrawalsExport, lambda exports, query: exports.withdrawals(
        query.status, query.member_id, query.first_day, query.last_day)),
    "daily_stats": (DailyStatsExport, lambda exports, query: exports.daily_stats(
        query.member_id, query.first_day, query.last_day)),
}


class ExportHandler(ConsoleHandler, FileAnswers):
    """The kinds of `kinds`, each selected from what `exporter` gives (a subclass serves other kinds)."""

    permission = Permission.EXPORTS
    kinds: dict[str, tuple[type[Query], Callable[[Any, Any], Export]]] = EXPORTS

    def exporter(self) -> Any:
        return self.runtime.exports

    async def get(self, kind: str, file_format: str) -> None:
        model, select = self.kinds[kind]
        query = self.parse_query(model)
        await self.send_export(select(self.exporter(), query), file_format, lambda: self.audit(
            f"export.{kind}", "export", f"{kind}.{file_format}",
            after=query.model_dump(mode="json", by_alias=True, exclude_defaults=True)))


@dataclass(frozen=True)
class Filter:
    """One filter of an export's form: a text box, a date, or a choice."""

    name: str
    label: str
    input: str = "text"
    choices: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ExportForm:
    kind: str
    title: str
    filters: tuple[Filter, ...]


def _choices(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(labels.items())


def _days(what: str) -> tuple[Filter, Filter]:
    return Filter("from", f"{what}起始日", "date"), Filter("to", f"{what}截止日", "date")


MEMBER_ID = Filter("member_id", "推广员ID")


def export_forms(grades: list[str]) -> tuple[ExportForm, ...]:
    """Each kind's form; `grades`: the grade names the settings have."""
    return (
        ExportForm("members", "会员", (
            Filter("promoter_status", "推广员状态", choices=_choices(LABELS[PromoterStatus])),
            Filter("frozen", "是否冻结", choices=(("true", "已冻结"), ("false", "未冻结"))),
            Filter("grade", "等级", choices=tuple((grade, grade) for grade in grades)), *_days("加入"))),
        ExportForm("orders", "订单", (
            Filter("status", "状态", choices=_choices(LABELS[OrderStatus])), Filter("promoter_id", "推广员ID"),
            Filter("direct", "推广员层级", choices=(("true", "仅一级"),)), Filter("order_no", "订单号"),
            *_days("下单"))),
        ExportForm("commissions", "佣金", (
            Filter("status", "状态", choices=_choices(LABELS[CommissionStatus])), MEMBER_ID,
            Filter("order_no", "订单号"), *_days("产生"))),
        ExportForm("ledger", "资金流水", (MEMBER_ID, *_days("记账"))),
        ExportForm("withdrawals", "提现", (
            Filter("status", "状态", choices=_choices(LABELS[WithdrawalStatus])), MEMBER_ID, *_days("申请"))),
        ExportForm("daily_stats", "推广员每日数据（默认近 30 天，最多 366 天）", (MEMBER_ID, *_days("统计"))),
        # services.finance_exports, served by handlers.console.finance
        ExportForm("reconciliation", "对账（默认昨天，最多 31 天）", _days("对账")),
        ExportForm("income_statement", "年度收入（税务，默认今年）", (Filter("year", "年度", "number"),)),
    )


class ExportsPage(ConsoleHandler):
    permission = Permission.EXPORTS

    async def get(self) -> None:
        grades = (await self.runtime.merchant_settings.get(GradeSettings)).grades
        self.render_page("exports.html", forms=export_forms([grade.name for grade in grades]))


ROUTES = [
    (r"/admin/exports", ExportsPage),
    (rf"/admin/export/(?P<kind>{'|'.join(EXPORTS)})\.(?P<file_format>{FILE_FORMATS})", ExportHandler),
]
