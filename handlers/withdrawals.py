"""The merchant reviews withdrawals."""

from __future__ import annotations

from datetime import datetime, timezone

from distribution.withdrawals import WithdrawalStatus
from web.base import ApiError
from handlers.merchant import MERCHANT_SECURITY, MerchantHandler
from web.openapi import error_responses, json_response, ref
from web.paging import CURSOR_PARAMETER, LIMIT_PARAMETER, Paging, page_schema
from miniapp_api.withdrawals import withdrawal_page, withdrawal_view
from services.withdrawals import WithdrawalRefused

STATUSES = [status.value for status in WithdrawalStatus]


class WithdrawalsHandler(MerchantHandler, Paging):
    openapi = {
        "get": {"summary": "Withdrawals, newest first", "security": MERCHANT_SECURITY,
                "parameters": [{"name": "status", "in": "query", "schema": {"type": "string", "enum": STATUSES}},
                               CURSOR_PARAMETER, LIMIT_PARAMETER],
                "responses": {"200": json_response("A page of withdrawals", page_schema(ref("Withdrawal"))),
                              **error_responses(400, 401)}},
    }

    async def get(self) -> None:
        status = self.get_query_argument("status", "") or None
        if status is not None and status not in STATUSES:
            raise ApiError(400, "invalid", f"status must be one of {', '.join(STATUSES)}", field="status")
        await withdrawal_page(self, {"status": status} if status else {})


class WithdrawalDecisionHandler(MerchantHandler):
    path_schemas = {"decision": {"type": "string", "enum": ["approve", "reject"]}}
    openapi = {
        "post": {"summary": "Approve (then pay) or reject (then unlock) a withdrawal waiting for review",
                 "security": MERCHANT_SECURITY,
                 "requestBody": {"required": False, "content": {"application/json": {"schema": {
                     "type": "object", "additionalProperties": False,
                     "properties": {"reason": {"type": ["string", "null"], "maxLength": 500}}}}}},
                 "responses": {"200": json_response("The withdrawal", ref("Withdrawal")),
                               **error_responses(400, 401, 404, 409)}},
    }

    async def post(self, withdrawal_id: str, decision: str) -> None:
        body = self.json_body() if self.request.body else {}
        reason = body.get("reason") if isinstance(body, dict) else None
        if reason is not None and (not isinstance(reason, str) or len(reason) > 500):
            raise ApiError(400, "invalid", "reason must be text of at most 500 characters", field="reason")
        try:
            withdrawal = await self.runtime.withdrawals.review(withdrawal_id, decision == "approve", reason,
                                                               datetime.now(timezone.utc))
        except LookupError:
            raise ApiError(404, "withdrawal_not_found", f"no withdrawal {withdrawal_id}") from None
        except WithdrawalRefused as refused:
            raise ApiError(409, refused.code, str(refused)) from None
        self.write_json(withdrawal_view(withdrawal))
