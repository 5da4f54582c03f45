"""The console's withdrawals (提现): the review queue with each promoter's history and risk signals beside
their request, and every decision finance takes on one — approve, reject with a reason, retry a stalled
payout, open a bank account, mark a bank transfer paid or failed — through the merchant API's service calls,
each recorded in the audit log. A finance page: every part of it needs Permission.MONEY."""

from __future__ import annotations

from datetime import datetime, timezone

from distribution.errors import DomainError
from distribution.risk import RULE_NAMES
from distribution.staff import Permission
from distribution.withdrawal_review import PromoterHistory, risk_signals
from distribution.withdrawals import PAYOUT_UNDER_WAY, WithdrawalMethod, WithdrawalStatus
from handlers.console.review import Rejection, ReviewQueue, shown_statuses
from handlers.console.risk import STATUSES as RISK_STATUSES
from handlers.withdrawals import BankFailure, BankPayment, status_of
from web.models import Withdrawal
from web.pages import WithdrawalsQuery, withdrawal_page

WITHDRAWALS_PATH = "/admin/withdrawals"

STATUSES = {"pending_review": "待审核", "approved": "已通过，待打款", "waiting_user_confirm": "待推广员确认收款",
            "transferring": "转账中", "cancelling": "撤销中", "paid": "已打款", "rejected": "已驳回",
            "failed": "打款失败", "returned": "已退回", "cancelled": "推广员已取消", "requested": "已申请"}
STATUS_TAGS = {"pending_review": "warn", "paid": "good", "rejected": "bad", "returned": "bad", "failed": "bad"}
METHODS = {"wechat_balance": "微信零钱", "bank": "银行卡"}
RISKS = {"first_withdrawal": "首次提现", "new_account": "注册不足 7 天", "above_usual": "金额远高于以往",
         "many_today": "今日多次申请", "frozen": "推广员已冻结", "in_debt": "余额为负（佣金被追回）"}
DONE = {"approve": "已通过提现", "reject": "已驳回提现", "retry": "已重新发起打款", "mark-paid": "已标记为已打款",
        "mark-failed": "已标记为打款失败，金额已退回推广员"}
REFUSALS = {
    "not_pending": "这笔提现已不在待审核状态，不能再审核",
    "conflict": "这笔提现的状态刚刚变化，请刷新后再试",
    "not_approved": "只有已通过、待打款的银行卡提现可以标记打款结果",
    "not_bank": "这笔提现不是银行卡提现",
    "not_wechat_balance": "只有微信零钱提现可以重试打款",
    "no_payout_under_way": "这笔提现没有进行中的打款，无需重试",
    "withdrawal_not_found": "找不到这笔提现",
    "risk_hold": "风控记录暂扣了这笔提现：请先在风控页放行或作废",
}

ShownStatus = shown_statuses(WithdrawalStatus)


class QueueQuery(WithdrawalsQuery):
    """The queue shows requests waiting for review unless another status (or every one) is asked for."""

    status: ShownStatus = WithdrawalStatus.PENDING_REVIEW.value


def actions_of(withdrawal: Withdrawal) -> list[str]:
    """What may be done with the withdrawal now, as its buttons' `data-action`."""
    if withdrawal.status is WithdrawalStatus.PENDING_REVIEW:
        return ["approve", "reject"]
    if withdrawal.method is WithdrawalMethod.BANK and withdrawal.status is WithdrawalStatus.APPROVED:
        return ["bank_account", "mark_paid", "mark_failed"]
    if withdrawal.method is WithdrawalMethod.WECHAT_BALANCE and withdrawal.status in PAYOUT_UNDER_WAY \
            and withdrawal.last_error:
        return ["retry"]
    return []


def account_days(history: PromoterHistory, now: datetime) -> int | None:
    return (now - history.joined_at).days if history.joined_at else None


class WithdrawalsConsole(ReviewQueue):
    permission = Permission.MONEY
    path = WITHDRAWALS_PATH
    template = "withdrawals.html"
    statuses = STATUSES
    decided = DONE
    refusals = REFUSALS

    async def show_queue(self, parameters: dict[str, str], status: int = 200, notice: str | None = None,
                         error: str | None = None) -> None:
        query, errors, page = await self.asked_page(QueueQuery, parameters, withdrawal_page)
        now = datetime.now(timezone.utc)
        histories = await self.runtime.withdrawals.histories([each.member_id for each in page.items], now)
        flags = await self.runtime.risk_review.of_withdrawals([each.id for each in page.items])
        self.render_queue(parameters, query, errors, page.next_cursor, status, notice=notice, error=error,
                          withdrawals=page.items, histories=histories, flags=flags, flag_rules=RULE_NAMES,
                          flag_statuses=RISK_STATUSES, now=now, risks_of=risk_signals,
                          actions_of=actions_of, account_days=account_days, tags=STATUS_TAGS, methods=METHODS,
                          risk_labels=RISKS)


class WithdrawalsPage(WithdrawalsConsole):
    async def get(self) -> None:
        await self.show_asked()


class WithdrawalActionHandler(WithdrawalsConsole):
    async def post(self, withdrawal_id: str, action: str) -> None:
        await self.decide(action, lambda form: self._act(withdrawal_id, action, form))

    async def _act(self, withdrawal_id: str, action: str, form: dict[str, str]) -> None:
        now = datetime.now(timezone.utc)
        service = self.runtime.withdrawals
        given = {name: form[name] for name in ("reason", "reference") if name in form}
        if action == "reject":
            reason = Rejection.from_dict(given).reason
            before = await service.get(withdrawal_id)
            after = await service.review(withdrawal_id, False, reason, now)
            await self.audit("withdrawal.reject", "withdrawal", withdrawal_id, status_of(before), status_of(after),
                             reason)
        elif action == "approve":
            before = await service.get(withdrawal_id)
            after = await service.review(withdrawal_id, True, None, now)
            await self.audit("withdrawal.approve", "withdrawal", withdrawal_id, status_of(before), status_of(after))
        elif action == "retry":
            retried = await service.retry_payout(withdrawal_id, now)
            await self.audit("withdrawal.retry", "withdrawal", withdrawal_id, status_of(retried),
                             status_of(retried), retried.get("last_error"))
        elif action == "mark-paid":
            reference = BankPayment.from_dict(given).reference
            before = await service.get(withdrawal_id)
            after = await service.mark_bank_paid(withdrawal_id, reference, now)
            await self.audit("withdrawal.mark_paid", "withdrawal", withdrawal_id, status_of(before),
                             {**status_of(after), "reference": reference})
        else:  # mark-failed
            reason = BankFailure.from_dict(given).reason
            before = await service.get(withdrawal_id)
            after = await service.mark_bank_failed(withdrawal_id, reason, now)
            await self.audit("withdrawal.mark_failed", "withdrawal", withdrawal_id, status_of(before),
                             status_of(after), reason)


class BankAccountHandler(WithdrawalsConsole):
    """A bank withdrawal's account, opened to pay it by hand: a POST, so that each opening is a deliberate act
    the audit log records, as the merchant API's reading is."""

    async def post(self, withdrawal_id: str) -> None:
        try:
            details = await self.runtime.withdrawals.bank_account(withdrawal_id, datetime.now(timezone.utc))
        except DomainError as error:
            await self.show_refusal({}, error)
            return
        await self.audit("withdrawal.bank_account", "withdrawal", withdrawal_id)
        withdrawal = Withdrawal.from_document(await self.runtime.withdrawals.get(withdrawal_id))
        self.render_page("withdrawal.html", withdrawal=withdrawal, account=details, actions=actions_of(withdrawal),
                         statuses=STATUSES, methods=METHODS)


ROUTES = [
    (WITHDRAWALS_PATH, WithdrawalsPage),
    (rf"{WITHDRAWALS_PATH}/(?P<withdrawal_id>[^/]+)/(?P<action>approve|reject|retry|mark-paid|mark-failed)",
     WithdrawalActionHandler),
    (rf"{WITHDRAWALS_PATH}/(?P<withdrawal_id>[^/]+)/bank-account", BankAccountHandler),
]
