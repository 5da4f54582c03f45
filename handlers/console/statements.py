"""The console's statements (结算单): each promoter's commissions of a settlement period, and the review of those
above the settlement settings' review threshold — approve (the money becomes withdrawable) or reject with a
reason (the commissions go to the next period's statement) — through the merchant API's service calls, each
recorded in the audit log. A finance page: every part of it needs Permission.MONEY."""

from __future__ import annotations

from datetime import datetime, timezone

from distribution.settlement import StatementStatus
from distribution.staff import Permission
from handlers.console.review import Rejection, ReviewQueue, shown_statuses
from handlers.statements import status_of
from web.statements import StatementsQuery, statement_page

STATEMENTS_PATH = "/admin/statements"

STATUSES = {"awaiting_review": "待复核", "settled": "已结算", "rejected": "已驳回"}
STATUS_TAGS = {"awaiting_review": "warn", "settled": "good", "rejected": "bad"}
POLICIES = {"daily": "按日", "weekly": "按周", "monthly": "按月", "per_commission": "逐笔"}
DONE = {"approve": "已通过结算单，金额已转为可提现", "reject": "已驳回结算单，佣金转入下一结算周期"}
REFUSALS = {"not_awaiting_review": "这张结算单已不在待复核状态", "statement_not_found": "找不到这张结算单",
            "conflict": "结算单中的佣金刚刚变化，请刷新后再试"}

ShownStatus = shown_statuses(StatementStatus)


class QueueQuery(StatementsQuery):
    """The queue shows statements waiting for review unless another status (or every one) is asked for."""

    status: ShownStatus = StatementStatus.AWAITING_REVIEW.value


class StatementsConsole(ReviewQueue):
    permission = Permission.MONEY
    path = STATEMENTS_PATH
    template = "statements.html"
    statuses = STATUSES
    decided = DONE
    refusals = REFUSALS

    async def show_queue(self, parameters: dict[str, str], status: int = 200, notice: str | None = None,
                         error: str | None = None) -> None:
        query, errors, page = await self.asked_page(QueueQuery, parameters, statement_page)
        promoters = await self.runtime.members.several(each.member_id for each in page.items)
        self.render_queue(parameters, query, errors, page.next_cursor, status, notice=notice, error=error,
                          statements=page.items, promoters=promoters, tags=STATUS_TAGS, policies=POLICIES)


class StatementsPage(StatementsConsole):
    async def get(self) -> None:
        await self.show_asked()


class StatementDecisionHandler(StatementsConsole):
    async def post(self, statement_id: str, decision: str) -> None:
        await self.decide(decision, lambda form: self._decide(statement_id, decision, form))

    async def _decide(self, statement_id: str, decision: str, form: dict[str, str]) -> None:
        now = datetime.now(timezone.utc)
        service = self.runtime.statements
        before = await service.get(statement_id)
        if decision == "approve":
            after = await service.approve(statement_id, now)
            await self.audit("statement.approve", "statement", statement_id, status_of(before), status_of(after))
        else:
            reason = Rejection.from_dict({name: form[name] for name in ("reason",) if name in form}).reason
            after = await service.reject(statement_id, reason, now)
            await self.audit("statement.reject", "statement", statement_id, status_of(before), status_of(after),
                             reason)


ROUTES = [
    (STATEMENTS_PATH, StatementsPage),
    (rf"{STATEMENTS_PATH}/(?P<statement_id>[^/]+)/(?P<decision>approve|reject)", StatementDecisionHandler),
]
