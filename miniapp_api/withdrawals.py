"""A member's withdrawals: request, list, look at one (and accept its payout in WeChat), cancel while pending."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from distribution.agreements import AgreementAct
from distribution.rate_limits import Action
from miniapp_api.auth import MiniappHandler
from miniapp_api.requests import WithdrawalRequest
from web.models import MyWithdrawal, Withdrawal
from web.openapi import Reply, operation
from web.pages import WithdrawalsQuery, withdrawal_page
from web.paging import Page

WITHDRAWAL = Reply("The withdrawal", Withdrawal)


class MyWithdrawalsHandler(MiniappHandler):
    @operation("My withdrawals, newest first", query=WithdrawalsQuery,
               responses={200: Reply("A page of withdrawals", Page[Withdrawal])})
    async def get(self) -> None:
        self.write_model(await withdrawal_page(self.runtime, self.member["_id"], self.parse_query(WithdrawalsQuery)))

    @operation("Withdraw: the amount is locked at once; small ones are approved at once", body=WithdrawalRequest,
               responses={201: WITHDRAWAL}, errors=(403, 409, 429))
    async def post(self) -> None:
        request = self.parse_body(WithdrawalRequest)
        await self.runtime.limits.check(Action.WITHDRAWAL_REQUEST, member=self.member["_id"])
        await self.runtime.agreements.require(self.member, AgreementAct.WITHDRAW)
        sealer = self.runtime.sealer
        bank = sealer.seal(json.dumps(request.bank.to_dict(), ensure_ascii=False)) if request.bank else None
        real_name = sealer.seal(request.real_name) if request.real_name else None
        withdrawal = await self.runtime.withdrawals.request(self.member, request.amount_fen, request.method.value,
                                                            bank, datetime.now(timezone.utc), real_name,
                                                            ip=self.client_ip)
        self.write_model(Withdrawal.from_document(withdrawal), status=201)


class MyWithdrawalHandler(MiniappHandler):
    @operation("One of my withdrawals; while its payout waits for me, what wx.requestMerchantTransfer takes to "
               "accept it", responses={200: Reply("The withdrawal", MyWithdrawal)}, errors=(404,))
    async def get(self, withdrawal_id: str) -> None:
        withdrawal = await self.runtime.withdrawals.get(withdrawal_id, self.member["_id"])
        confirm = self.runtime.withdrawals.confirmation(withdrawal)
        self.write_model(MyWithdrawal.from_document({**withdrawal, "confirm": confirm}))


class CancelWithdrawalHandler(MiniappHandler):
    @operation("Cancel my withdrawal while it waits for review; the amount returns to available",
               responses={200: WITHDRAWAL}, errors=(404, 409))
    async def post(self, withdrawal_id: str) -> None:
        withdrawal = await self.runtime.withdrawals.cancel(self.member["_id"], withdrawal_id,
                                                           datetime.now(timezone.utc))
        self.write_model(Withdrawal.from_document(withdrawal))
