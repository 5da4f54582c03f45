"""The merchant reviews withdrawals, and pays bank ones by hand."""

from __future__ import annotations

from datetime import datetime, timezone

from pydantic import Field

from distribution.records import Record, Text
from handlers.merchant import MerchantHandler, ReviewNote
from web.models import BankDetails, Withdrawal
from web.openapi import Reply, operation
from web.pages import WithdrawalsQuery, withdrawal_page
from web.paging import Page

WITHDRAWAL = Reply("The withdrawal", Withdrawal)


def status_of(withdrawal: dict) -> dict:
    """What the audit log keeps of a withdrawal before and after a decision on it."""
    return {"status": withdrawal["status"]}


class WithdrawalsHandler(MerchantHandler):
    @operation("Withdrawals, newest first", query=WithdrawalsQuery,
               responses={200: Reply("A page of withdrawals", Page[Withdrawal])})
    async def get(self) -> None:
        self.write_model(await withdrawal_page(self.runtime, None, self.parse_query(WithdrawalsQuery)))


class WithdrawalDecisionHandler(MerchantHandler):
    @operation("Approve (then pay) or reject (then unlock) a withdrawal waiting for review", body=ReviewNote,
               body_required=False, responses={200: WITHDRAWAL}, errors=(404, 409))
    async def post(self, withdrawal_id: str, decision: str) -> None:
        note = self.parse_body(ReviewNote, required=False)
        before = await self.runtime.withdrawals.get(withdrawal_id)
        withdrawal = await self.runtime.withdrawals.review(withdrawal_id, decision == "approve", note.reason,
                                                           datetime.now(timezone.utc))
        await self.audit(f"withdrawal.{decision}", "withdrawal", withdrawal_id, status_of(before),
                         status_of(withdrawal), note.reason)
        self.write_model(Withdrawal.from_document(withdrawal))


class BankAccountHandler(MerchantHandler):
    @operation("The bank account to pay a bank withdrawal into (each reading is audited)",
               responses={200: Reply("The account", BankDetails)}, errors=(404, 409))
    async def get(self, withdrawal_id: str) -> None:
        details = await self.runtime.withdrawals.bank_account(withdrawal_id, datetime.now(timezone.utc))
        await self.audit("withdrawal.bank_account", "withdrawal", withdrawal_id)  # who read it; never the account
        self.write_model(BankDetails.model_validate(details))


class BankPayment(Record):
    """The merchant paid an approved bank withdrawal."""

    reference: Text = Field(max_length=128, description="the bank transfer's reference, for the records")


class BankFailure(Record):
    """The merchant could not pay an approved bank withdrawal."""

    reason: Text = Field(max_length=500, description="why; shown to the promoter")


class MarkBankPaidHandler(MerchantHandler):
    @operation("Mark an approved bank withdrawal paid: the locked amount is paid out", body=BankPayment,
               responses={200: WITHDRAWAL}, errors=(404, 409))
    async def post(self, withdrawal_id: str) -> None:
        payment = self.parse_body(BankPayment)
        before = await self.runtime.withdrawals.get(withdrawal_id)
        withdrawal = await self.runtime.withdrawals.mark_bank_paid(withdrawal_id, payment.reference,
                                                                   datetime.now(timezone.utc))
        await self.audit("withdrawal.mark_paid", "withdrawal", withdrawal_id, status_of(before),
                         {**status_of(withdrawal), "reference": payment.reference})
        self.write_model(Withdrawal.from_document(withdrawal))


class MarkBankFailedHandler(MerchantHandler):
    @operation("Mark an approved bank withdrawal failed: the amount returns to available", body=BankFailure,
               responses={200: WITHDRAWAL}, errors=(404, 409))
    async def post(self, withdrawal_id: str) -> None:
        failure = self.parse_body(BankFailure)
        before = await self.runtime.withdrawals.get(withdrawal_id)
        withdrawal = await self.runtime.withdrawals.mark_bank_failed(withdrawal_id, failure.reason,
                                                                     datetime.now(timezone.utc))
        await self.audit("withdrawal.mark_failed", "withdrawal", withdrawal_id, status_of(before),
                         status_of(withdrawal), failure.reason)
        self.write_model(Withdrawal.from_document(withdrawal))
