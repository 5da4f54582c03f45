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

WeChat-balance payouts are WeChat Pay transfer bills under the withdrawal's id
(`out_bill_no`: a retry never makes a second bill). The worker's job
(`advance`) takes the payout one step further from wherever it is: it makes
the bill (which then waits for the promoter to accept it in WeChat), asks for
its state, cancels it once it has waited past the merchant's
`confirm_within_hours`. Each bill state it learns, from an answer, a query or
WeChat Pay's callback, is applied through `steps_for_bill`: SUCCESS pays the
locked amount out, FAIL and CANCELLED return it, once, whatever repeats. An
unclear answer (none, a 5xx, one that does not verify) is resolved by asking
for the bill, never by a new number. Every payout under way carries
`next_check_at`: the sweep (`requeue_due`, periodic) queues the job again for
those it passes, so a lost job or a lost callback only delays the payout.

Bank withdrawals are paid by the merchant by hand, who reads the sealed bank
details (each reading audited) and marks them paid or failed.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Mapping

from bson import ObjectId
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from distribution import errors
from distribution.calendar import china_day, china_time
from distribution.ledger import Bucket, withdrawal_locked, withdrawal_paid, withdrawal_unlocked
from distribution.withdrawal_review import PromoterHistory
from distribution.withdrawals import (
    FINAL_BILL_STATES,
    PAYOUT_UNDER_WAY,
    UNLOCKING,
    BillState,
    WithdrawalMethod,
    WithdrawalQuote,
    WithdrawalRefusal,
    WithdrawalRules,
    WithdrawalStatus,
    check_transition,
    check_withdrawal,
    contradicts,
    needs_user_name,
    steps_for_bill,
)
from services.merchant_settings import MerchantSettings
from services.notifications import NotificationService, thing, yuan
from services.risk import RiskService
from services.sealing import Sealer
from stores.grades import PROMOTER_TOTALS, withdrawn_update
from stores.job_queue import JobQueue, RetryLater
from stores.ledger import ACCOUNTS, LedgerStore
from stores.locks import held_once
from stores.members import MemberStore
from stores.orders import HELD_BY
from stores.withdrawals import WITHDRAWAL_DAYS, WITHDRAWALS, WithdrawalStore, day_key
from stores.writes import Conflict, WriteSet, commit
from wechatpay import (
    BILL_FINISHED,
    Bill,
    CallbackRejected,
    PayError,
    PayRefused,
    PaySignatureRejected,
    PayUnclear,
    Transfer,
    TransferBills,
    bill_of,
)

log = logging.getLogger(__name__)

PAY_JOB = "withdrawals.pay"
MAX_PAYOUT_ATTEMPTS = 5
PAYOUT_BACKOFF_SECONDS = 60.0
MAX_BACKOFF_SECONDS = 3600.0
# A payout job is queued at once; past this the sweep assumes it was lost and queues it again.
SWEEP_AFTER = timedelta(minutes=5)
# A bill that is not final is asked after this long, in case its callback was lost.
RECONCILE_AFTER = timedelta(minutes=10)
PAYOUT_LOCK_SECONDS = 60.0
SWEEP_LIMIT = 500
PLANNING_ATTEMPTS = 5
BANK_ACCOUNT_READ = "bank_account_read"
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
        """The mini-program's openid first (where wx.requestMerchantTransfer is called), else the official
        account's."""
        if member.get("miniapp_openid"):
            return Payee(self.miniapp_app_id, member["miniapp_openid"])
        if member.get("oa_openid"):
            return Payee(self.oa_app_id, member["oa_openid"])
        return None


def is_frozen(member: dict | None) -> bool:
    return bool(member and member.get("frozen"))


def refuse_if_frozen(member: dict | None) -> None:
    """A frozen member's money stays where it is: no withdrawal is requested, approved or paid."""
    if is_frozen(member):
        raise WithdrawalRefused("member_frozen", "the member is frozen: their withdrawals wait until the merchant "
                                                 "unfreezes them")


def _backoff(attempts: int) -> float:
    return min(MAX_BACKOFF_SECONDS, PAYOUT_BACKOFF_SECONDS * 2 ** (attempts - 1))


class WithdrawalService:
    def __init__(self, client: AsyncMongoClient, db: AsyncDatabase, members: MemberStore,
                 merchant_settings: MerchantSettings, queue: JobQueue, bills: TransferBills | None, payees: PayeeApps,
                 notifications: NotificationService, sealer: Sealer, redis: Redis, redis_prefix: str,
                 risk: RiskService | None = None):
        self.client = client
        self.risk = risk  # None: no risk holds (tools that pay out directly)
        self.db = db
        self.members = members
        self.payees = payees
        self.notifications = notifications
        self.sealer = sealer
        self.store = WithdrawalStore(db)
        self.ledger = LedgerStore(db)
        self.merchant_settings = merchant_settings
        self.queue = queue
        self.bills = bills  # None: WeChat Pay is not configured, and WeChat-balance withdrawals are refused
        self.redis = redis
        self.lock_prefix = f"{redis_prefix}withdrawal-payout:"

    async def page(self, member_id: str | None, status: str | None, limit: int, before: str | None) -> list[dict]:
        """Withdrawals newest first, of one member and/or in one status, after the id `before`."""
        return await self.store.page(member_id, status, limit, before)

    async def histories(self, member_ids: list[str], now: datetime) -> dict[str, PromoterHistory]:
        """Each promoter's money so far, for reviewing their requests: a few reads, whatever the page holds."""
        wanted = sorted(set(member_ids))
        if not wanted:
            return {}
        members = await self.members.several(wanted)
        paid = await self.store.paid_totals(wanted)
        today = await self.store.requested_on(wanted, china_day(now))
        balances = await self.ledger.balances_of_accounts(wanted)
        histories = {}
        for member_id in wanted:
            member, totals, held = members.get(member_id, {}), paid.get(member_id, {}), balances[member_id]
            histories[member_id] = PromoterHistory(
                nickname=member.get("nickname"), paid_count=totals.get("count", 0),
                paid_fen=totals.get("amount_fen", 0), earned_fen=sum(held.values()) + totals.get("amount_fen", 0),
                available_fen=held[Bucket.AVAILABLE], requested_today=today.get(member_id, 0),
                joined_at=member.get("created_at"), frozen=bool(member.get("frozen")),
                direct_count=int(member.get("direct_count", 0)))
        return histories

    async def get(self, withdrawal_id: str, member_id: str | None = None) -> dict:
        """WithdrawalNotFound unless it exists (and, with `member_id`, is that member's)."""
        withdrawal = await self.store.get(withdrawal_id)
        if withdrawal is None or (member_id is not None and withdrawal["member_id"] != member_id):
            raise WithdrawalNotFound(f"no withdrawal {withdrawal_id}")
        return withdrawal

    def confirmation(self, withdrawal: dict) -> dict[str, str] | None:
        """The arguments of wx.requestMerchantTransfer, by which the promoter accepts the payout in WeChat, while
        it waits for them."""
        if withdrawal["status"] != WithdrawalStatus.WAITING_USER_CONFIRM.value or not withdrawal.get("package_info") \
                or self.bills is None:
            return None
        payee = withdrawal["payee"]
        return {"mchId": self.bills.mch_id, "appId": payee["app_id"], "package": withdrawal["package_info"],
                "openId": payee["openid"]}

    async def request(self, member: dict, amount_fen: int, method: str, bank_sealed: str | None,
                      now: datetime, real_name_sealed: str | None = None, ip: str | None = None) -> dict:
        refuse_if_frozen(member)
        rules = await self.merchant_settings.get(WithdrawalRules)
        wechat = method == WithdrawalMethod.WECHAT_BALANCE.value
        if wechat and self.bills is None:
            raise WithdrawalRefused("wechat_pay_not_configured",
                                    "WeChat Pay is not configured here: withdraw to a bank account")
        day = china_day(now)
        is_first = not await self.store.has_been_paid(member["_id"])
        buyers = await self.store.distinct_paying_buyers(member["_id"]) if is_first else []
        for _ in range(PLANNING_ATTEMPTS):
            totals = await self.store.day_totals(member["_id"], day)
            available = (await self.ledger.balances(member["_id"]))[Bucket.AVAILABLE]
            quote = check_withdrawal(amount_fen, rules, totals["count"], totals["amount_fen"], available,
                                     len(buyers), is_first)
            if isinstance(quote, WithdrawalRefusal):
                raise WithdrawalRefused(quote.value, REFUSAL_MESSAGES[quote])
            if wechat and real_name_sealed is None and needs_user_name(quote.net_fen, rules.real_name_check):
                raise errors.Invalid("WeChat Pay checks the payee's real name for this withdrawal: give it",
                                     code="real_name_required", field="real_name")
            withdrawal = self._new(member["_id"], quote, method, bank_sealed, real_name_sealed, day, now)
            writes = WriteSet()
            if self.risk is not None:
                held_by = await self.risk.withdrawal_holds(member, withdrawal["_id"], is_first, buyers,
                                                           rules.min_distinct_paying_buyers, totals["count"], ip,
                                                           now, writes)
                withdrawal = held(withdrawal, held_by)
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
            if withdrawal["next_check_at"] is not None:
                await self.queue.enqueue(PAY_JOB, {"withdrawal_id": withdrawal["_id"]})
            await self.notify("withdrawal_requested_admin", withdrawal, now)
            return withdrawal
        raise WithdrawalRefused("busy", "the balance kept changing; try again")

    @staticmethod
    def _new(member_id: str, quote: WithdrawalQuote, method: str, bank_sealed: str | None,
             real_name_sealed: str | None, day: str, now: datetime) -> dict:
        status = quote.status_after_request
        return {
            "_id": str(ObjectId()), "member_id": member_id, "amount_fen": quote.amount_fen, "fee_fen": quote.fee_fen,
            "net_fen": quote.net_fen, "method": method, "bank_sealed": bank_sealed,
            "real_name_sealed": real_name_sealed, "status": status.value, "day": day, "created_at": now,
            "updated_at": now, "attempts": 0, "last_error": None, "note": None,
            "next_check_at": _first_check(method, status, now),
            "history": [{"status": status.value, "at": now, "note": None}],
        }

    async def _move(self, withdrawal: dict, target: WithdrawalStatus, now: datetime, note: str | None = None,
                    extra: Mapping | None = None, writes: WriteSet | None = None) -> WriteSet:
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
            writes.update(PROMOTER_TOTALS, withdrawn_update(member_id, amount))
        return writes

    async def _commit_moves(self, withdrawal: dict, targets: tuple[WithdrawalStatus, ...], now: datetime,
                            note: str | None = None, extra: Mapping | None = None) -> dict:
        """Move through `targets` in one transaction; Conflict when the withdrawal moved first. The promoter
        hears of where it ends."""
        writes, moving = WriteSet(), withdrawal
        for target in targets:
            await self._move(moving, target, now, note, extra, writes)
            moving = {**moving, "status": target.value}
        await commit(self.client, self.db, writes)
        moved = await self.store.get(withdrawal["_id"])
        if targets[-1] in TOLD_TO_THE_PROMOTER:
            await self.notify(f"withdrawal_{targets[-1].value}", moved, now)
        return moved

    async def _commit_move(self, withdrawal: dict, target: WithdrawalStatus, now: datetime,
                           note: str | None = None, extra: Mapping | None = None) -> dict:
        """Move and commit; WithdrawalRefused('conflict') when the withdrawal moved first."""
        try:
            return await self._commit_moves(withdrawal, (target,), now, note, extra)
        except Conflict:
            raise WithdrawalRefused("conflict", f"the withdrawal is no longer {withdrawal['status']}") from None

    async def _in_status(self, withdrawal_id: str, status: WithdrawalStatus, member_id: str | None = None,
                         method: WithdrawalMethod | None = None) -> dict:
        withdrawal = await self.get(withdrawal_id, member_id)
        if method is not None and withdrawal["method"] != method.value:
            raise WithdrawalRefused(f"not_{method.value}", f"the withdrawal is paid by {withdrawal['method']}")
        if withdrawal["status"] != status.value:
            code = "not_pending" if status is WithdrawalStatus.PENDING_REVIEW else f"not_{status.value}"
            raise WithdrawalRefused(code, f"the withdrawal is {withdrawal['status']}, not {status.value}")
        return withdrawal

    async def cancel(self, member_id: str, withdrawal_id: str, now: datetime) -> dict:
        """WithdrawalNotFound when the member has no such withdrawal; WithdrawalRefused when it is not pending."""
        withdrawal = await self._in_status(withdrawal_id, WithdrawalStatus.PENDING_REVIEW, member_id)
        return await self._commit_move(withdrawal, WithdrawalStatus.CANCELLED, now, "cancelled by the promoter")

    async def review(self, withdrawal_id: str, approve: bool, note: str | None, now: datetime) -> dict:
        """WithdrawalNotFound, or WithdrawalRefused when it is not waiting for review."""
        withdrawal = await self._in_status(withdrawal_id, WithdrawalStatus.PENDING_REVIEW)
        if not approve:
            return await self._commit_move(withdrawal, WithdrawalStatus.REJECTED, now, note)
        refuse_if_frozen(await self.members.get(withdrawal["member_id"]))
        if withdrawal.get(HELD_BY):
            raise WithdrawalRefused("risk_hold", "a risk flag holds the withdrawal: clear or void the flag first")
        check_at = _first_check(withdrawal["method"], WithdrawalStatus.APPROVED, now)
        approved = await self._commit_move(withdrawal, WithdrawalStatus.APPROVED, now, note,
                                           {"next_check_at": check_at})
        if check_at is not None:
            await self.queue.enqueue(PAY_JOB, {"withdrawal_id": withdrawal_id})
        return approved

    async def cancel_waiting_bills(self, member_id: str) -> int:
        """Queue the payout job of each of the member's transfer bills that waits for their acceptance: for a
        frozen member the job cancels the bill (`advance`), so that accepting a transfer made before the freeze
        cannot carry the money past it; the money returns to their balance. How many were queued."""
        waiting = await self.store.ids_of_member(member_id, WithdrawalStatus.WAITING_USER_CONFIRM.value)
        for withdrawal_id in waiting:
            await self.queue.enqueue(PAY_JOB, {"withdrawal_id": withdrawal_id})
        return len(waiting)

    async def plan_rejection(self, withdrawal: dict, note: str, now: datetime, writes: WriteSet) -> None:
        """Plan rejecting a withdrawal waiting for review into another step's `writes` (a voided risk flag)."""
        await self._move(withdrawal, WithdrawalStatus.REJECTED, now, note, writes=writes)

    async def rejected(self, withdrawal_id: str, now: datetime) -> None:
        """Tell the promoter of a rejection another step committed."""
        withdrawal = await self.store.get(withdrawal_id)
        if withdrawal is not None and withdrawal["status"] == WithdrawalStatus.REJECTED.value:
            await self.notify("withdrawal_rejected", withdrawal, now)

    async def retry_payout(self, withdrawal_id: str, now: datetime) -> dict:
        """Try a WeChat-balance payout again now rather than after its backoff (a failed attempt, WeChat Pay
        unconfigured or its balance short until now): the payout job is queued at once. Safe however often: the
        job takes the payout one step from wherever it is, under the one bill number; the sweep looks again
        should the job be lost. WithdrawalRefused unless its payout is under way."""
        withdrawal = await self.get(withdrawal_id)
        if withdrawal["method"] != WithdrawalMethod.WECHAT_BALANCE.value:
            raise WithdrawalRefused("not_wechat_balance", f"the withdrawal is paid by {withdrawal['method']}")
        if WithdrawalStatus(withdrawal["status"]) not in PAYOUT_UNDER_WAY:
            raise WithdrawalRefused("no_payout_under_way", f"the withdrawal is {withdrawal['status']}: no payout "
                                                           "to try again")
        await self.store.postpone([withdrawal_id], now + SWEEP_AFTER)
        await self.queue.enqueue(PAY_JOB, {"withdrawal_id": withdrawal_id})
        return withdrawal

    # --- bank payouts, by the merchant's hand ------------------------------------------------------------

    async def bank_account(self, withdrawal_id: str, now: datetime) -> dict:
        """The bank details of a bank withdrawal, opened for the merchant; each reading is audited."""
        withdrawal = await self.get(withdrawal_id)
        if withdrawal["method"] != WithdrawalMethod.BANK.value or not withdrawal.get("bank_sealed"):
            raise WithdrawalRefused("not_bank", "the withdrawal has no bank account")
        details = json.loads(self.sealer.open(withdrawal["bank_sealed"]))
        await self.store.record_reading(withdrawal, BANK_ACCOUNT_READ, now)
        log.info("withdrawal %s: the merchant read the bank details", withdrawal_id)
        return details

    async def mark_bank_paid(self, withdrawal_id: str, reference: str, now: datetime) -> dict:
        """The merchant paid it: the locked amount is paid out. WithdrawalRefused unless an approved bank one."""
        withdrawal = await self._in_status(withdrawal_id, WithdrawalStatus.APPROVED, method=WithdrawalMethod.BANK)
        refuse_if_frozen(await self.members.get(withdrawal["member_id"]))
        return await self._commit_move(withdrawal, WithdrawalStatus.PAID, now, "paid by the merchant",
                                       {"reference": reference})

    async def mark_bank_failed(self, withdrawal_id: str, reason: str, now: datetime) -> dict:
        """The merchant could not pay it: the amount returns to available."""
        withdrawal = await self._in_status(withdrawal_id, WithdrawalStatus.APPROVED, method=WithdrawalMethod.BANK)
        try:
            return await self._commit_moves(withdrawal, (WithdrawalStatus.FAILED, WithdrawalStatus.RETURNED), now,
                                            reason)
        except Conflict:
            raise WithdrawalRefused("conflict", "the withdrawal is no longer approved") from None

    # --- WeChat-balance payouts ------------------------------------------------------------------------

    async def advance(self, withdrawal_id: str, now: datetime) -> str:
        """The worker's job: take a payout one step further. Returns what happened; RetryLater to try again."""
        async with held_once(self.redis, self.lock_prefix + withdrawal_id, PAYOUT_LOCK_SECONDS) as held:
            if not held:
                return "another worker is on it"
            withdrawal = await self.store.get(withdrawal_id)
            if withdrawal is None or withdrawal["method"] != WithdrawalMethod.WECHAT_BALANCE.value \
                    or WithdrawalStatus(withdrawal["status"]) not in PAYOUT_UNDER_WAY:
                return "nothing to pay"
            if self.bills is None:
                await self._attempt_failed(withdrawal, "WeChat Pay is not configured", now, count=False)
                return "WeChat Pay is not configured"
            if withdrawal["status"] == WithdrawalStatus.APPROVED.value:
                if is_frozen(await self.members.get(withdrawal["member_id"])):
                    # Left approved, and looked at again by the sweep: paid once the member is unfrozen.
                    await self.store.postpone([withdrawal_id], now + SWEEP_AFTER)
                    return "held: the member is frozen"
                return await self._create(withdrawal, now)
            bill = await self._query(withdrawal, now)
            if bill is None:
                log.error("withdrawal %s is %s but WeChat Pay has no bill for it", withdrawal_id, withdrawal["status"])
                return "no bill"
            outcome = await self.apply_bill(withdrawal_id, bill, now)
            withdrawal = await self.store.get(withdrawal_id)
            if withdrawal["status"] == WithdrawalStatus.WAITING_USER_CONFIRM.value:
                expired = withdrawal.get("confirm_by") is not None and now >= withdrawal["confirm_by"]
                if expired or is_frozen(await self.members.get(withdrawal["member_id"])):
                    return await self._cancel_unconfirmed(withdrawal, now)
                if not withdrawal.get("package_info"):
                    return await self._create(withdrawal, now)
            return outcome

    async def _create(self, withdrawal: dict, now: datetime, resolve: bool = True) -> str:
        """Make (or fetch again, by the same number) the withdrawal's bill, and apply what it says. A refusal or
        an unclear answer is resolved by asking for the bill (`resolve`), else tried again later."""
        payee = await self._payee(withdrawal)
        if payee is None:
            return await self._give_up(withdrawal, "NO_OPENID", "the promoter has no openid WeChat Pay can credit", now)
        if not withdrawal.get("payee"):
            # The bill's number is tied to its payee: every later attempt pays the same openid.
            await self.store.update_payout(withdrawal["_id"], withdrawal["status"], {"payee": asdict(payee)})
        # WeChat Pay takes no name below 0.3 yuan.
        named = withdrawal.get("real_name_sealed") and needs_user_name(withdrawal["net_fen"], real_name_check=True)
        name = self.sealer.open(withdrawal["real_name_sealed"]) if named else None
        transfer = Transfer(withdrawal["_id"], payee.app_id, payee.openid, withdrawal["net_fen"], name)
        try:
            bill = await self.bills.create(transfer)
        except PaySignatureRejected as rejected:
            raise await self._configuration_error(withdrawal, rejected, now) from None
        except (PayRefused, PayUnclear) as failure:
            retryable = isinstance(failure, PayRefused) and failure.retryable
            if not resolve or (retryable and withdrawal["attempts"] + 1 < MAX_PAYOUT_ATTEMPTS):
                raise await self._attempt_failed(withdrawal, str(failure), now) from None
            return await self._resolve(withdrawal, failure, now)
        return await self.apply_bill(withdrawal["_id"], bill, now)

    async def _resolve(self, withdrawal: dict, failure: PayError, now: datetime) -> str:
        """After a create that was refused or unclear: what WeChat Pay has under the number decides. A bill
        waiting for the promoter is asked for by creating it again (the query's answer has no package)."""
        bill = await self._query(withdrawal, now)
        if bill is not None:
            outcome = await self.apply_bill(withdrawal["_id"], bill, now)
            moved = await self.store.get(withdrawal["_id"])
            if moved["status"] == WithdrawalStatus.WAITING_USER_CONFIRM.value and not moved.get("package_info"):
                return await self._create(moved, now, resolve=False)
            return outcome
        final = isinstance(failure, PayRefused) and not failure.retryable
        if final or withdrawal["attempts"] + 1 >= MAX_PAYOUT_ATTEMPTS:
            return await self._give_up(withdrawal, failure.code, str(failure), now)
        raise await self._attempt_failed(withdrawal, str(failure), now)

    async def _query(self, withdrawal: dict, now: datetime) -> Bill | None:
        try:
            return await self.bills.query(withdrawal["_id"])
        except PaySignatureRejected as rejected:
            raise await self._configuration_error(withdrawal, rejected, now) from None
        except PayError as failure:
            raise await self._attempt_failed(withdrawal, f"query: {failure}", now) from None

    async def _cancel_unconfirmed(self, withdrawal: dict, now: datetime) -> str:
        try:
            bill = await self.bills.cancel(withdrawal["_id"])
        except PayRefused:
            bill = await self._query(withdrawal, now)  # the promoter accepted it meanwhile
            if bill is None:
                return "no bill"
        except PayUnclear as unclear:
            raise await self._attempt_failed(withdrawal, f"cancel: {unclear}", now) from None
        except PaySignatureRejected as rejected:
            raise await self._configuration_error(withdrawal, rejected, now) from None
        return await self.apply_bill(withdrawal["_id"], bill, now)

    async def apply_bill(self, withdrawal_id: str, bill: Bill, now: datetime) -> str:
        """Bring the withdrawal to what its bill says, once: a state it has passed already changes nothing."""
        for _ in range(PLANNING_ATTEMPTS):
            withdrawal = await self.store.get(withdrawal_id)
            if withdrawal is None or withdrawal["method"] != WithdrawalMethod.WECHAT_BALANCE.value:
                log.warning("a transfer bill for no WeChat-balance withdrawal: %s", withdrawal_id)
                return "not ours"
            current = WithdrawalStatus(withdrawal["status"])
            if contradicts(current, bill.state):
                log.error("withdrawal %s is %s but its transfer bill is %s", withdrawal_id, current, bill.state)
                return "contradiction"
            steps = steps_for_bill(current, bill.state)
            fields = await self._bill_fields(withdrawal, bill, steps, now)
            if not steps:
                if current in PAYOUT_UNDER_WAY:
                    await self.store.update_payout(withdrawal_id, current.value, fields)
                return f"still {current.value}"
            note = None
            if steps[-1] is WithdrawalStatus.RETURNED:
                note = f"WeChat Pay transfer {bill.state.value}" + (f": {bill.fail_reason}" if bill.fail_reason else "")
            try:
                await self._commit_moves(withdrawal, steps, now, note, fields)
            except Conflict:
                continue  # a callback, a query or another worker moved it first: look again
            log.info("withdrawal %s: %s", withdrawal_id, steps[-1].value)
            return steps[-1].value
        return "kept moving"

    async def _bill_fields(self, withdrawal: dict, bill: Bill, steps: tuple[WithdrawalStatus, ...],
                           now: datetime) -> dict:
        fields: dict = {"bill_state": bill.state.value, "updated_at": now}
        if bill.transfer_bill_no:
            fields["transfer_bill_no"] = bill.transfer_bill_no
        if bill.state in FINAL_BILL_STATES:
            return {**fields, "next_check_at": None, "package_info": None}
        if bill.package_info:
            fields["package_info"] = bill.package_info
        check_at = now + RECONCILE_AFTER
        if WithdrawalStatus.WAITING_USER_CONFIRM in steps:
            rules = await self.merchant_settings.get(WithdrawalRules)
            fields["confirm_by"] = now + timedelta(hours=rules.confirm_within_hours)
        confirm_by = fields.get("confirm_by") or withdrawal.get("confirm_by")
        if bill.state is BillState.WAIT_USER_CONFIRM and confirm_by is not None:
            check_at = min(check_at, confirm_by)
        return {**fields, "next_check_at": check_at}

    async def _payee(self, withdrawal: dict) -> Payee | None:
        """The payee the first attempt chose (a bill's number is tied to it), else the member's."""
        if withdrawal.get("payee"):
            return Payee(**withdrawal["payee"])
        member = await self.members.get(withdrawal["member_id"])
        return self.payees.payee_of(member) if member else None

    async def _attempt_failed(self, withdrawal: dict, error: str, now: datetime, count: bool = True) -> RetryLater:
        """Record a failed attempt; the RetryLater that brings the job back after the backoff."""
        attempts = withdrawal["attempts"] + (1 if count else 0)
        seconds = _backoff(max(attempts, 1))
        await self.store.record_attempt(withdrawal["_id"], withdrawal["status"], attempts, error, now,
                                        now + timedelta(seconds=seconds) + SWEEP_AFTER)
        return RetryLater(seconds, error)

    async def _configuration_error(self, withdrawal: dict, rejected: PaySignatureRejected, now: datetime) -> RetryLater:
        log.error("WeChat Pay refused our signature (withdrawal %s): %s", withdrawal["_id"], rejected.message)
        return await self._attempt_failed(withdrawal, f"configuration: {rejected}", now, count=False)

    async def _give_up(self, withdrawal: dict, code: str, reason: str, now: datetime) -> str:
        """approved -> failed -> returned in one transaction: the amount goes back to available."""
        try:
            await self._commit_moves(withdrawal, (WithdrawalStatus.FAILED, WithdrawalStatus.RETURNED), now,
                                     f"returned after payout failure {code}",
                                     {"last_error": reason, "next_check_at": None})
        except Conflict:
            return "moved meanwhile"
        return f"returned: {code}"

    async def receive_transfer_notice(self, headers: Mapping[str, str], body: bytes, now: datetime) -> str:
        """WeChat Pay's callback of a final bill: verified, opened, applied once. CallbackRejected when it is
        not WeChat Pay's, not fresh, or not ours; nothing changes then."""
        if self.bills is None:
            raise CallbackRejected(401, "WeChat Pay is not configured")
        notice, resource = await self.bills.client.open_callback(headers, body)
        if notice.get("event_type") != BILL_FINISHED:
            return f"ignored {notice.get('event_type')}"
        try:
            bill = bill_of(resource, self.bills.mch_id)
        except PayUnclear as error:
            raise CallbackRejected(400, error.message) from None
        return await self.apply_bill(bill.out_bill_no, bill, now)

    async def requeue_due(self, now: datetime, limit: int = SWEEP_LIMIT) -> int:
        """The outbox sweep: payouts under way that nobody looked at by their `next_check_at` (a job lost or
        dead-lettered, a callback lost) are queued again; while a backlog drains, only those due before it
        (`JobQueue.sweep_cutoff`): a payout's job may be waiting behind it."""
        due = await self.store.payouts_due([status.value for status in PAYOUT_UNDER_WAY],
                                           await self.queue.sweep_cutoff(now, SWEEP_AFTER), limit)
        await self.store.postpone(due, now + RECONCILE_AFTER)
        for withdrawal_id in due:
            await self.queue.enqueue(PAY_JOB, {"withdrawal_id": withdrawal_id})
        return len(due)

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


def held(withdrawal: dict, flag_ids: list[str]) -> dict:
    """A new withdrawal held by risk flags: it waits for the merchant's review, whatever its amount."""
    if not flag_ids:
        return withdrawal
    status = WithdrawalStatus.PENDING_REVIEW.value
    return {**withdrawal, HELD_BY: flag_ids, "status": status, "next_check_at": None,
            "history": [{"status": status, "at": withdrawal["created_at"], "note": "held by a risk flag"}]}


def _first_check(method: str, status: WithdrawalStatus, now: datetime) -> datetime | None:
    """When the sweep first looks at a WeChat-balance payout that was just approved (its job may be lost)."""
    if method == WithdrawalMethod.WECHAT_BALANCE.value and status is WithdrawalStatus.APPROVED:
        return now + SWEEP_AFTER
    return None
