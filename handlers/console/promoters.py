"""The console's promoters (推广员): the member search, a promoter's page, and what staff do to a member by hand.

The list is the merchant API's member search (`handlers.merchant.member_search_page`); a promoter's page reads
each of its sections through the page functions the merchant API answers with, a few rows each, with a link
to the section's own pages. Re-binds, freezes and grades go through `handlers.relations`, as the API's do, and
are audited there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from distribution.errors import DomainError
from distribution.grades import GradeSettings
from distribution.records import InvalidField
from distribution.risk import RULE_NAMES
from distribution.staff import Permission
from handlers.console.base import ConsoleHandler
from handlers.console.listing import filters_of, list_link, pager, parsed, query_parameters
from handlers.console.orders import COMMISSION_STATUSES, STATUS_TAGS
from handlers.console.risk import STATUSES as RISK_STATUSES
from handlers.console.withdrawals import METHODS as WITHDRAWAL_METHODS, STATUSES as WITHDRAWAL_STATUSES
from handlers.merchant import MemberSearch, member_search_page
from handlers.relations import (GradeChange, TeamQuery, UplineChange, bind_log_page, rebind, set_frozen, set_grade,
                                team_page)
from services.members import MemberNotFound
from services.runtime import Runtime
from web.base import error_status
from web.models import LedgerEntry, ListedMember
from web.pages import CommissionsQuery, WithdrawalsQuery, commission_page, withdrawal_page
from web.risk import FlagsQuery, flag_page
from web.paging import Page, PageQuery, TimePageQuery, time_cursor

PROMOTERS_PATH = "/admin/promoters"
# Rows each section of a promoter's page shows; the section's own pages show a full page.
SECTION_ROWS = 8

PROMOTER_STATUSES = {"none": "普通会员", "pending": "申请待审核", "approved": "推广员（审核通过）",
                     "rejected": "申请被拒", "appointed": "推广员（指定）"}
BIND_SOURCES = {"oa_scan": "扫码关注", "miniapp_scene": "小程序码", "share_link": "分享链接", "admin": "后台改绑"}
BIND_RESULTS = {"bound": "已绑定", "refused": "未绑定"}
LEDGER_BUCKETS = {"frozen": "冻结", "available": "可提现", "locked": "提现中"}
LEDGER_KINDS = {"commission_frozen": "佣金入账（冻结）", "commission_settled": "佣金结算", "commission_cancelled": "退款取消佣金",
                "commission_clawback": "退款追回佣金", "withdrawal_locked": "申请提现", "withdrawal_paid": "提现到账",
                "withdrawal_fee": "提现手续费", "withdrawal_unlocked": "提现退回"}
DONE = {"upline": "已更换上级", "freeze": "已冻结该会员", "unfreeze": "已解冻该会员", "grade": "已调整等级"}
# What staff read when a search or an action is refused: by the refusal's code, else by the field at fault.
REFUSALS = {
    "unindexed_search": "这些条件不能一起使用：昵称只能单独搜索；不搜索时一次只能用一个筛选；按手机尾号搜索时可任意筛选",
    "member_not_found": "找不到该会员",
    "unknown_upline": "找不到该上级",
    "self": "不能把会员绑定到自己名下",
    "cycle": "新上级在该会员的团队里，改绑会形成循环",
    "frozen_member": "该会员已冻结，先解冻才能改绑",
    "frozen_upline": "新上级已冻结",
    "ineligible_upline": "新上级还不能发展下级（见绑定设置中的上级资格）",
    "same_upline": "新上级就是现在的上级",
    "contended": "该会员正被同时改动，请稍后重试",
    "same_grade": "该会员已是这个等级",
    "conflict": "该会员的等级刚刚变化，请刷新后再试",
}
FIELD_PROBLEMS = {"reason": "请填写原因（最多 500 字）", "upline_id": "请填写新上级的会员 ID（24 位）",
                  "grade": "请选择设置中已有的等级", "phone_tail": "请填写手机号的后 4 位数字",
                  "q": "昵称最多按前 20 个字搜索", "nickname": "昵称最多按前 20 个字搜索"}


def refusal_message(error: DomainError) -> str:
    if isinstance(error, InvalidField) and error.field in FIELD_PROBLEMS:
        return FIELD_PROBLEMS[error.field]
    return REFUSALS.get(error.code, FIELD_PROBLEMS.get(error.field or "", error.message))


def promoter_path(member_id: str, section: str | None = None) -> str:
    return f"{PROMOTERS_PATH}/{member_id}" + (f"/{section}" if section else "")


async def ledger_page(runtime: Runtime, member_id: str, query: TimePageQuery) -> Page[LedgerEntry]:
    entries = await runtime.ledger.page(member_id, query.limit, query.cursor)
    return Page[LedgerEntry].of(entries, query.limit, LedgerEntry.from_document, time_cursor("at"))


@dataclass(frozen=True)
class Section:
    """A list on a promoter's page: its query (the cursor's kind, its filters) and the API's page of it."""

    title: str
    query: type[BaseModel]
    page: Callable[[Runtime, dict, Any], Awaitable[Page]]


SECTIONS: dict[str, Section] = {
    "direct": Section("直推成员", TeamQuery, lambda runtime, member, query: team_page(
        runtime, member, query.model_copy(update={"depth": "1"}))),
    "team": Section("全部团队", TeamQuery, lambda runtime, member, query: team_page(
        runtime, member, query.model_copy(update={"depth": "all"}))),
    "binds": Section("绑定记录", PageQuery, lambda runtime, member, query: bind_log_page(runtime, member, query)),
    "commissions": Section("佣金", CommissionsQuery,
                           lambda runtime, member, query: commission_page(runtime, member["_id"], query)),
    "ledger": Section("账本", TimePageQuery, lambda runtime, member, query: ledger_page(runtime, member["_id"], query)),
    "withdrawals": Section("提现", WithdrawalsQuery,
                           lambda runtime, member, query: withdrawal_page(runtime, member["_id"], query)),
    "risk": Section("风控记录", FlagsQuery, lambda runtime, member, query: flag_page(
        runtime, query.model_copy(update={"member_id": member["_id"]}))),
}

# What every promoter template is given to name things with.
LABELS = {"promoter_statuses": PROMOTER_STATUSES, "bind_sources": BIND_SOURCES, "bind_results": BIND_RESULTS,
          "ledger_buckets": LEDGER_BUCKETS, "ledger_kinds": LEDGER_KINDS, "commission_statuses": COMMISSION_STATUSES,
          "status_tags": STATUS_TAGS, "withdrawal_statuses": WITHDRAWAL_STATUSES,
          "withdrawal_methods": WITHDRAWAL_METHODS, "promoter_path": promoter_path, "risk_rules": RULE_NAMES,
          "risk_statuses": RISK_STATUSES}


class PromotersConsole(ConsoleHandler):
    async def grade_names(self) -> list[str]:
        return [grade.name for grade in (await self.runtime.merchant_settings.get(GradeSettings)).grades]

    async def member_or_404(self, member_id: str) -> dict:
        member = await self.runtime.members.get(member_id)
        if member is None:
            raise MemberNotFound(f"no member {member_id}")
        return member

    async def show(self, member: dict, status: int = 200, notice: str | None = None, refused: str | None = None,
                   action: str | None = None, values: dict[str, str] | None = None,
                   errors: dict[str, str] | None = None) -> None:
        """The promoter's page: their summary and chain, a few rows of each section, and the actions (with the
        refusal of the one just tried, if it was)."""
        runtime = self.runtime
        listed, chain, history, grades, *pages = await asyncio.gather(
            runtime.members.summaries([member]), runtime.members.chain(member), runtime.grades.history(member["_id"]),
            self.grade_names(),
            *(section.page(runtime, member, section.query(limit=SECTION_ROWS)) for section in SECTIONS.values()))
        self.render_page("promoter.html", status=status, notice=notice, refused=refused, action=action,
                         values=values or {}, errors=errors or {},
                         promoter=ListedMember.from_listed(listed[0], runtime.sealer), chain=chain,
                         grade_history=history, grades=grades, sections=SECTIONS, pages=dict(zip(SECTIONS, pages)),
                         **LABELS)


class PromotersPage(PromotersConsole):
    async def get(self) -> None:
        parameters = query_parameters(self)
        query, errors = parsed(MemberSearch, parameters)
        page = Page[ListedMember](items=[], next_cursor=None)
        if query is not None:
            try:
                page = await member_search_page(self.runtime, query)
            except DomainError as error:
                errors = {error.field or "q": refusal_message(error)}
        else:
            errors = {field: FIELD_PROBLEMS.get(field, problem) for field, problem in errors.items()}
        self.render_page("promoters.html", status=400 if errors else 200, errors=errors,
                         values=filters_of(parameters), members=page.items,
                         pager=pager(PROMOTERS_PATH, parameters, page.next_cursor),
                         grades=await self.grade_names(), **LABELS)


class PromoterPage(PromotersConsole):
    async def get(self, member_id: str) -> None:
        await self.show(await self.member_or_404(member_id), notice=DONE.get(self.get_query_argument("done", "")))


class PromoterActionHandler(PromotersConsole):
    """Re-bind, freeze, unfreeze or grade a member: done and audited as the merchant API does it; a refusal is
    shown on the promoter's page with its status."""

    action_permission = Permission.MEMBERS

    async def post(self, member_id: str, action: str) -> None:
        member = await self.member_or_404(member_id)
        form = self.form()
        try:
            await self._act(member, action, form)
        except DomainError as error:
            message = refusal_message(error)
            await self.show(member, status=error_status(error) or 400, refused=message, action=action, values=form,
                            errors={error.field or action: message})
            return
        self.redirect(list_link(promoter_path(member_id), {"done": action}), status=303)

    async def _act(self, member: dict, action: str, form: dict[str, str]) -> None:
        reason = form.get("reason", "").strip()
        if action == "upline":
            change = UplineChange.from_dict({"upline_id": form.get("upline_id", "").strip(), "reason": reason})
            await rebind(self, member, change.upline_id, change.reason)
        elif action == "grade":
            change = GradeChange.from_dict({"grade": form.get("grade") or None, "reason": reason})
            await set_grade(self, member["_id"], change.grade, change.reason)
        else:  # freeze or unfreeze: the reason goes to the audit log, and may be left out
            await set_frozen(self, member["_id"], action == "freeze", reason or None)


class PromoterSectionPage(PromotersConsole):
    """One section of a promoter's page, a full page at a time."""

    async def get(self, member_id: str, section_name: str) -> None:
        member = await self.member_or_404(member_id)
        section = SECTIONS[section_name]
        parameters = query_parameters(self)
        query, errors = parsed(section.query, parameters)
        page = await section.page(self.runtime, member, query) if query is not None \
            else Page[Any](items=[], next_cursor=None)
        self.render_page("promoter_section.html", status=400 if errors else 200, errors=errors, promoter=member,
                         section_name=section_name, section=section, page=page,
                         pager=pager(promoter_path(member_id, section_name), parameters, page.next_cursor),
                         **LABELS)


MEMBER_ID = r"(?P<member_id>[0-9a-f]{24})"

ROUTES = [
    (PROMOTERS_PATH, PromotersPage),
    (rf"{PROMOTERS_PATH}/{MEMBER_ID}", PromoterPage),
    (rf"{PROMOTERS_PATH}/{MEMBER_ID}/(?P<action>upline|freeze|unfreeze|grade)", PromoterActionHandler),
    (rf"{PROMOTERS_PATH}/{MEMBER_ID}/(?P<section_name>{'|'.join(SECTIONS)})", PromoterSectionPage),
]
