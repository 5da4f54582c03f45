"""A member's withdrawals: request, list, cancel while pending."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from web.base import ApiError
from web.openapi import error_responses, json_response, ref
from web.paging import CURSOR_PARAMETER, LIMIT_PARAMETER, Paging, decode_cursor, encode_cursor, page_schema
from miniapp_api.auth import MINIAPP_SECURITY, MiniappHandler
from miniapp_api.requests import WithdrawalRequest
from services.withdrawals import WithdrawalRefused

WITHDRAWAL_BODY = {
    "type": "object", "required": ["amount_fen", "method"], "additionalProperties": False,
    "properties": {
        "amount_fen": {"type": "integer", "minimum": 1, "maximum": 10**10},
        "method": {"type": "string", "enum": ["wechat_balance", "bank"]},
        "bank": {"type": ["object", "null"], "additionalProperties": False,
                 "required": ["account_name", "account_no", "bank_name"],
                 "properties": {"account_name": {"type": "string", "maxLength": 64},
                                "account_no": {"type": "string", "maxLength": 34},
                                "bank_name": {"type": "string", "maxLength": 64}}},
    },
}


def withdrawal_view(withdrawal: dict) -> dict:
    shown = {name: withdrawal.get(name) for name in ("member_id", "amount_fen", "fee_fen", "net_fen", "method",
                                                    "status", "note", "created_at", "updated_at")}
    return {"id": withdrawal["_id"], **shown}


async def withdrawal_page(handler: Paging, query: dict) -> None:
    before = decode_cursor(cursor, 1)[0] if (cursor := handler.get_query_argument("cursor", "")) else None
    limit = handler.page_limit()
    items = [withdrawal_view(w) for w in await handler.runtime.withdrawals.store.page(query, limit, before)]
    handler.write_json({"items": items, "next_cursor": encode_cursor(items[-1]["id"]) if len(items) == limit else None})


class MyWithdrawalsHandler(MiniappHandler, Paging):
    openapi = {
        "get": {"summary": "My withdrawals, newest first", "security": MINIAPP_SECURITY,
                "parameters": [CURSOR_PARAMETER, LIMIT_PARAMETER],
                "responses": {"200": json_response("A page of withdrawals", page_schema(ref("Withdrawal"))),
                              **error_responses(400, 401)}},
        "post": {"summary": "Withdraw: the amount is locked at once; small ones are approved at once",
                 "security": MINIAPP_SECURITY,
                 "requestBody": {"required": True, "content": {"application/json": {"schema": WITHDRAWAL_BODY}}},
                 "responses": {"201": json_response("The withdrawal", ref("Withdrawal")),
                               **error_responses(400, 401, 409)}},
    }

    async def get(self) -> None:
        await withdrawal_page(self, {"member_id": self.member["_id"]})

    async def post(self) -> None:
        request = self.parse_body(WithdrawalRequest)
        bank = self.runtime.sealer.seal(json.dumps(request.bank.to_dict(), ensure_ascii=False)) if request.bank else None
        try:
            withdrawal = await self.runtime.withdrawals.request(self.member, request.amount_fen, request.method.value,
                                                                bank, datetime.now(timezone.utc))
        except WithdrawalRefused as refused:
            raise ApiError(409, refused.code, str(refused)) from None
        self.write_json(withdrawal_view(withdrawal), status=201)


class CancelWithdrawalHandler(MiniappHandler):
    openapi = {
        "post": {"summary": "Cancel my withdrawal while it waits for review; the amount returns to available",
                 "security": MINIAPP_SECURITY,
                 "responses": {"200": json_response("The withdrawal", ref("Withdrawal")),
                               **error_responses(401, 404, 409)}},
    }

    async def post(self, withdrawal_id: str) -> None:
        try:
            withdrawal = await self.runtime.withdrawals.cancel(self.member["_id"], withdrawal_id,
                                                               datetime.now(timezone.utc))
        except LookupError:
            raise ApiError(404, "withdrawal_not_found", f"you have no withdrawal {withdrawal_id}") from None
        except WithdrawalRefused as refused:
            raise ApiError(409, refused.code, str(refused)) from None
        self.write_json(withdrawal_view(withdrawal))
