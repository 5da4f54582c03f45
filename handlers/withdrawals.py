"""The merchant reviews withdrawals."""

from __future__ import annotations

from datetime import datetime, timezone

from handlers.merchant import MerchantHandler, ReviewNote
from web.models import Withdrawal
from web.openapi import Reply, operation
from web.pages import WithdrawalsQuery, withdrawal_page
from web.paging import Page


class WithdrawalsHandler(MerchantHandler):
    @operation("Withdrawals, newest first", query=WithdrawalsQuery,
               responses={200: Reply("A page of withdrawals", Page[Withdrawal])})
    async def get(self) -> None:
        self.write_model(await withdrawal_page(self.runtime, None, self.parse_query(WithdrawalsQuery)))


class WithdrawalDecisionHandler(MerchantHandler):
    @operation("Approve (then pay) or reject (then unlock) a withdrawal waiting for review", body=ReviewNote,
               body_required=False, responses={200: Reply("The withdrawal", Withdrawal)}, errors=(404, 409))
    async def post(self, withdrawal_id: str, decision: str) -> None:
        note = self.parse_body(ReviewNote, required=False)
        withdrawal = await self.runtime.withdrawals.review(withdrawal_id, decision == "approve", note.reason,
                                                           datetime.now(timezone.utc))
        self.write_model(Withdrawal.from_document(withdrawal))
