"""A member's own money: commissions and ledger entries, newest first."""

from __future__ import annotations

from web.openapi import error_responses, json_response, ref
from handlers.orders import STATUS_PARAMETER, write_commission_page
from web.paging import CURSOR_PARAMETER, LIMIT_PARAMETER, Paging, page_schema
from miniapp_api.auth import MINIAPP_SECURITY, MiniappHandler

class MyCommissionsHandler(MiniappHandler, Paging):
    openapi = {
        "get": {"summary": "My commissions, newest first", "security": MINIAPP_SECURITY,
                "parameters": [STATUS_PARAMETER, CURSOR_PARAMETER, LIMIT_PARAMETER],
                "responses": {"200": json_response("A page of commissions", page_schema(ref("Commission"))),
                              **error_responses(400, 401)}},
    }

    async def get(self) -> None:
        await write_commission_page(self, self.member["_id"])


LEDGER_ENTRY = {
    "type": "object", "required": ["id", "bucket", "amount_fen", "kind", "ref", "at"],
    "properties": {"id": {"type": "string"}, "bucket": {"type": "string", "enum": ["frozen", "available", "locked"]},
                   "amount_fen": {"type": "integer"}, "kind": {"type": "string"}, "ref": {"type": "string"},
                   "at": {"type": "string", "format": "date-time"}},
}


class MyLedgerHandler(MiniappHandler, Paging):
    openapi = {
        "get": {"summary": "Every movement of my money, newest first", "security": MINIAPP_SECURITY,
                "parameters": [CURSOR_PARAMETER, LIMIT_PARAMETER],
                "responses": {"200": json_response("A page of ledger entries", page_schema(LEDGER_ENTRY)),
                              **error_responses(400, 401)}},
    }

    async def get(self) -> None:
        after, limit = self.time_cursor(), self.page_limit()
        entries = await self.runtime.ledger.store.page(self.member["_id"], limit, after)
        items = [{"id": e["_id"], **{k: e[k] for k in ("bucket", "amount_fen", "kind", "ref", "at")}} for e in entries]
        self.write_json({"items": items, "next_cursor": self.next_time_cursor(entries, limit, "at")})
