"""Withdrawals (提现): request, review, payout, and every way back.

Each step is one `WriteSet` committed in one transaction, guarded on the
state it was planned on:

- request: the account must still hold `available >= amount` (a guard that
  also writes the account, so concurrent requests conflict and are decided
  again one after the other: fifty at once can never overdraw), the day's
  totals must still be under the caps, and the amount moves available ->
  locked in the ledger;
- approve / reject / cancel / paid / returned: the withdrawal must still be
  in the status the step starts from; a replay finds it moved and is a no-op.

Payout goes through the worker: a WeChat Pay transfer keyed by the
withdrawal's id (so a repeat after a crash pays once), retried with backoff
on WeChat Pay's temporary refusals, returned to available after the last.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from bson import ObjectId
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from wechatpay.payout import PayoutFailed, PayoutPort
from distribution import errors
from distribution.calendar import china_day, china_time
from distribution.ledger import Bucket, withdrawal_locked, withdrawal_paid, withdrawal_unlocked
from distribution.withdrawals import (
    UNLOCKING,
    WithdrawalQuote,
    WithdrawalRefusal,
    WithdrawalRules,
    WithdrawalStatus,
    check_transition,
    check_withdrawal,
)
from services.merchant_settings import MerchantSettings
from services.notifications import NotificationService, thing, yuan
from stores.job_queue import JobQueue, RetryLater
from stores.ledger import ACCOUNTS, LedgerStore
from stores.members import MemberStore
from stores.withdrawals import WITHDRAWAL_DAYS, WITHDRAWALS, WithdrawalStore, day_key
from stores.writes import Conflict, WriteSet, commit

log = logging.getLogger(__name__)

PAY_JOB = "withdrawals.pay"
MAX_PAYOUT_ATTEMPTS = 5
PAYOUT_BACKOFF_SECONDS = 60.0
PLANNING_ATTEMPTS = 5
# Steps the promoter did not take: they hear of them (a cancel is their own doing).
TOLD_TO_THE_PROMOTER = {WithdrawalStatus.PAID, WithdrawalStatus.REJECTED, WithdrawalStatus.RETURNED}
# How a notice reads in each status one is sent in: the status (a WeChat "phrase": a few Chinese characters)
# and the note. A withdrawal's own notes are the system's, in English, except a merchant's reason for
# rejecting, which the promoter is shown instead.
NOTICE_WORDS = {
    WithdrawalStatus.PENDING_REVIEW: ("待审核", "请及时审核"),
    WithdrawalStatus.APPROVED: ("审核通过", "将自动打款"),
    WithdrawalStatus.PAID: ("已到账", "已转入微信零钱"),
    WithdrawalStatus.REJECTED: ("未通过", "如有疑问请联系商家"),
    WithdrawalStatus.RETURNED: ("已退回", "打款未成功，金额已退回可提现余额"),
}


class WithdrawalRefused(errors.Refused):
    def __init__(self, code: str, message: str):
        super().__init__(message, code=code)


class WithdrawalNotFound(errors.NotFound):
    code = "withdrawal_not_found"


REFUSAL_MESSAGES = {
    WithdrawalRefusal.BELOW_MINIMUM: "the amount is below the minimum withdrawal",
    WithdrawalRefusal.INSUFFICIENT_BALANCE: "the available balance is smaller than the amount",
    WithdrawalRefusal.DAILY_COUNT_CAP: "today's number of withdrawals is used up",
    WithdrawalRefusal.DAILY_AMOUNT_CAP: "today's withdrawal amount would exceed the daily cap",
    WithdrawalRefusal.TOO_FEW_BUYERS: "a first withdrawal needs more distinct paying buyers",
}


@dataclass(frozen=True)
class Payee:
    """Where a wechat_balance withdrawal is paid: the app whose openid WeChat Pay credits."""

    app_id: str
    openid: str


@dataclass(frozen=True)
class PayeeApps:
    miniapp_app_id: str
    oa_app_id: str

    def payee_of(self, member: dict) -> Payee | None:
        """The mini-program's openid first, else the official account's."""
        if member.get("miniapp_openid"):
            return Payee(self.miniapp_app_id, member["miniapp_openid"])
        if member.get("oa_openid"):
            return Payee(self.oa_app_id, member["oa_openid"])
        return None


class WithdrawalService:
    def __init__(self, client: AsyncMongoClient, db: AsyncDatabase, members: MemberStore,
                 merchant_settings: MerchantSettings, queue: JobQueue, payout: PayoutPort, payees: PayeeApps,
                 notifications: NotificationService):
        self.client = client
        self.db = db
        self.members = members
        self.payees = payees
        self.notifications = notifications
        self.store = WithdrawalStore(db)
        self.ledger = LedgerStore(db)
        self.merchant_settings = merchant_settings
        self.queue = queue
        self.payout = payout

    async def page(self, member_id: str | None, status: str | None, limit: int, before: str | None) -> list[dict]:
        """Withdrawals newest first, of one member and/or in one status, after the id `before`."""
        return await self.store.page(member_id, status, limit, before)

    async def request(self, member: dict, amount_fen: int, method: str, bank_sealed: str | None,
                      now: datetime) -> dict:
        rules = await self.merchant_settings.get(WithdrawalRules)
        day = china_day(now)
        is_first = not await self.store.has_been_paid(member["_id"])
        buyers = await self.store.distinct_paying_buyers(member["_id"]) if is_first else 0
        for _ in range(PLANNING_ATTEMPTS):
            totals = await self.store.day_totals(member["_id"], day)
            available = (await self.ledger.balances(member["_id"]))[Bucket.AVAILABLE]
            quote = check_withdrawal(amount_fen, rules, totals["count"], totals["amount_fen"], available, buyers,
                                     is_first)
            if isinstance(quote, WithdrawalRefusal):
                raise WithdrawalRefused(quote.value, REFUSAL_MESSAGES[quote])
            withdrawal = self._new(member["_id"], quote, method, bank_sealed, day, now)
            writes = WriteSet()
            writes.insert(WITHDRAWALS, [withdrawal])
            writes.guard(ACCOUNTS, {"_id": member["_id"], "available_fen": {"$gte": amount_fen}},
                         {"$inc": {"withdrawal_requests": 1}})
            writes.guard(WITHDRAWAL_DAYS, {"_id": day_key(member["_id"], day), "count": {"$lt": rules.daily_count_cap},
                                           "amount_fen": {"$lte": rules.daily_amount_cap_fen - amount_fen}},
                         {"$inc": {"count": 1, "amount_fen": amount_fen}})
            writes.ledger(withdrawal_locked(member["_id"], withdrawal["_id"], amount_fen), now)
            try:
                await commit(self.client, self.db, writes)
            except Conflict:
                continue  # the balance or the day's totals moved meanwhile: decide again on fresh numbers
            await self.notify("withdrawal_requested_admin", withdrawal, now)
            if withdrawal["status"] == WithdrawalStatus.APPROVED.value:
                await self.queue.enqueue(PAY_JOB, {"withdrawal_id": withdrawal["_id"]})
            return withdrawal
        raise WithdrawalRefused("busy", "the balance kept changing; try again")

    @staticmethod
    def _new(member_id: str, quote: WithdrawalQuote, method: str, bank_sealed: str | None, day: str,
             now: datetime) -> dict:
        status = quote.status_after_request
        return {
            "_id": str(ObjectId()), "member_id": member_id, "amount_fen": quote.amount_fen, "fee_fen": quote.fee_fen,
            "net_fen": quote.net_fen, "method": method, "bank_sealed": bank_sealed, "status": status.value,
            "day": day, "created_at": now, "updated_at": now, "attempts": 0, "last_error": None, "batch_id": None,
            "note": None, "history": [{"status": status.value, "at": now, "note": None}],
        }

    async def _move(self, withdrawal: dict, target: WithdrawalStatus, now: datetime, note: str | None = None,
                    extra: dict | None = None, writes: WriteSet | None = None) -> WriteSet:
        """Plan moving `withdrawal` from its status to `target` (with what the move does to the money)."""
        current = WithdrawalStatus(withdrawal["status"])
        check_transition(current, target)
        writes = writes or WriteSet()
        writes.guard(WITHDRAWALS, {"_id": withdrawal["_id"], "status": current.value},
                     {"$set": {"status": target.value, "updated_at": now, "note": note, **(extra or {})},
                      "$push": {"history": {"status": target.value, "at": now, "note": note}}})
        member_id, amount = withdrawal["member_id"], withdrawal["amount_fen"]
        if target in UNLOCKING:
            writes.ledger(withdrawal_unlocked(member_id, withdrawal["_id"], amount), now)
            writes.guard(WITHDRAWAL_DAYS, {"_id": day_key(member_id, withdrawal["day"])},
                         {"$inc": {"count": -1, "amount_fen": -amount}})
        if target is WithdrawalStatus.PAID:
            writes.ledger(withdrawal_paid(member_id, withdrawal["_id"], amount, withdrawal["fee_fen"]), now)
        return writes

    async def _commit_move(self, withdrawal: dict, target: WithdrawalStatus, now: datetime,
                           note: str | None = None, extra: dict | None = None) -> dict:
        """Move and commit; WithdrawalRefused('conflict') when the withdrawal moved first."""
        try:
            await commit(self.client, self.db, await self._move(withdrawal, target, now, note, extra))
        except Conflict:
            raise WithdrawalRefused("conflict", f"the withdrawal is no longer {withdrawal['status']}") from None
        moved = await self.store.get(withdrawal["_id"])
        if target in TOLD_TO_THE_PROMOTER:
            await self.notify(f"withdrawal_{target.value}", moved, now)
        return moved

    async def _pending(self, withdrawal_id: str, member_id: str | None = None) -> dict:
        withdrawal = await self.store.get(withdrawal_id)
        if withdrawal is None or (member_id is not None and withdrawal["member_id"] != member_id):
            raise WithdrawalNotFound(f"no withdrawal {withdrawal_id}")
        if withdrawal["status"] != WithdrawalStatus.PENDING_REVIEW.value:
            raise WithdrawalRefused("not_pending", f"the withdrawal is {withdrawal['status']}, not waiting for review")
        return withdrawal

    async def cancel(self, member_id: str, withdrawal_id: str, now: datetime) -> dict:
        """WithdrawalNotFound when the member has no such withdrawal; WithdrawalRefused when it is not pending."""
        withdrawal = await self._pending(withdrawal_id, member_id)
        return await self._commit_move(withdrawal, WithdrawalStatus.CANCELLED, now, "cancelled by the promoter")

    async def review(self, withdrawal_id: str, approve: bool, note: str | None, now: datetime) -> dict:
        """WithdrawalNotFound, or WithdrawalRefused when it is not waiting for review."""
        withdrawal = await self._pending(withdrawal_id)
        if not approve:
            return await self._commit_move(withdrawal, WithdrawalStatus.REJECTED, now, note)
        approved = await self._commit_move(withdrawal, WithdrawalStatus.APPROVED, now, note)
        await self.queue.enqueue(PAY_JOB, {"withdrawal_id": withdrawal_id})
        return approved

    async def pay(self, withdrawal_id: str, now: datetime) -> str:
        """The worker's job: pay an approved withdrawal. Returns what happened; RetryLater to try again."""
        withdrawal = await self.store.get(withdrawal_id)
        if withdrawal is None or withdrawal["status"] != WithdrawalStatus.APPROVED.value:
            return "nothing to pay"
        if withdrawal["method"] != "wechat_balance":
            return "paid by the merchant by hand"
        member = await self.members.get(withdrawal["member_id"])
        payee = self.payees.payee_of(member) if member else None
        if payee is None:
            return await self._give_up(withdrawal, "NO_OPENID", "the promoter has no openid WeChat Pay can credit", now)
        try:
            batch_id = await self.payout.transfer(payee.app_id, withdrawal["_id"], payee.openid, withdrawal["net_fen"],
                                                  "佣金提现")
        except PayoutFailed as failed:
            attempts = withdrawal["attempts"] + 1
            if failed.retryable and attempts < MAX_PAYOUT_ATTEMPTS:
                await self.store.record_attempt(withdrawal_id, attempts, str(failed), now)
                raise RetryLater(PAYOUT_BACKOFF_SECONDS * 2 ** (attempts - 1), str(failed)) from failed
            return await self._give_up(withdrawal, failed.code, str(failed), now)
        await self._commit_move(withdrawal, WithdrawalStatus.PAID, now, extra={"batch_id": batch_id})
        return "paid"

    async def notify(self, kind: str, withdrawal: dict, now: datetime) -> None:
        status = WithdrawalStatus(withdrawal["status"])
        word, note = NOTICE_WORDS[status]
        reason = withdrawal.get("note") if status is WithdrawalStatus.REJECTED else None
        data = {"amount": yuan(withdrawal["net_fen"]), "status": word, "time": china_time(now),
                "note": thing(reason, note)}
        key = f"{kind}:{withdrawal['_id']}"
        if kind.endswith("_admin"):
            await self.notifications.notify_admins(kind, key, data, now)
        else:
            await self.notifications.notify(kind, key, withdrawal["member_id"], data, now)

    async def _give_up(self, withdrawal: dict, code: str, reason: str, now: datetime) -> str:
        """approved -> failed -> returned in one transaction: the amount goes back to available."""
        writes = await self._move(withdrawal, WithdrawalStatus.FAILED, now, reason, {"last_error": reason})
        failed = {**withdrawal, "status": WithdrawalStatus.FAILED.value}
        await self._move(failed, WithdrawalStatus.RETURNED, now, f"returned after payout failure {code}", writes=writes)
        try:
            await commit(self.client, self.db, writes)
        except Conflict:
            return "moved meanwhile"
        await self.notify("withdrawal_returned", await self.store.get(withdrawal["_id"]), now)
        return f"returned: {code}"
