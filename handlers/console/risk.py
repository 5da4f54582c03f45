"""The console's risk review queue (风控): flags raised by the risk rules, with their evidence and what they
hold, and the merchant's decision on each — clear (honest: what it held is released) or void (fraud: its held
commissions are cancelled, its held withdrawal rejected) — with a reason, through the merchant API's service
calls, each recorded in the audit log. Voiding moves money: the page needs Permission.MONEY."""

from __future__ import annotations

from distribution.risk import RULE_NAMES, FlagStatus
from distribution.staff import Permission
from handlers.console.review import Rejection, ReviewQueue, shown_statuses
from web.risk import FlagsQuery, decide_flag, flag_page

RISK_PATH = "/admin/risk"

STATUSES = {"open": "待处理", "cleared": "已放行", "voided": "已作废"}
STATUS_TAGS = {"open": "warn", "cleared": "good", "voided": "bad"}
ACTIONS = {"allow": "放行", "flag": "仅标记", "hold": "暂扣待审", "reject": "拒绝"}
DONE = {"clear": "已放行：暂扣的佣金与提现已释放", "void": "已作废：暂扣的佣金已取消，提现已驳回"}
REFUSALS = {"flag_decided": "这条风控记录已经处理过了", "flag_not_found": "找不到这条风控记录"}

ShownStatus = shown_statuses(FlagStatus)


class QueueQuery(FlagsQuery):
    """The queue shows open flags unless another status (or every one) is asked for."""

    status: ShownStatus = FlagStatus.OPEN.value  # type: ignore[assignment]


class RiskConsole(ReviewQueue):
    permission = Permission.MONEY
    path = RISK_PATH
    template = "risk.html"
    statuses = STATUSES
    decided = DONE
    refusals = REFUSALS

    async def show_queue(self, parameters: dict[str, str], status: int = 200, notice: str | None = None,
                         error: str | None = None) -> None:
        query, errors, page = await self.asked_page(QueueQuery, parameters,
                                                    lambda runtime, _, asked: flag_page(runtime, asked))
        members = await self.runtime.members.several(each.member_id for each in page.items)
        self.render_queue(parameters, query, errors, page.next_cursor, status, notice=notice, error=error,
                          flags=page.items, members=members, tags=STATUS_TAGS, rules=RULE_NAMES, actions=ACTIONS)


class RiskPage(RiskConsole):
    async def get(self) -> None:
        await self.show_asked()


class RiskDecisionHandler(RiskConsole):
    async def post(self, flag_id: str, decision: str) -> None:
        await self.decide(decision, lambda form: self._decide(flag_id, decision, form))

    async def _decide(self, flag_id: str, decision: str, form: dict[str, str]) -> None:
        reason = Rejection.from_dict({name: form[name] for name in ("reason",) if name in form}).reason
        await decide_flag(self, flag_id, decision, reason)


ROUTES = [
    (RISK_PATH, RiskPage),
    (rf"{RISK_PATH}/(?P<flag_id>[^/]+)/(?P<decision>clear|void)", RiskDecisionHandler),
]
