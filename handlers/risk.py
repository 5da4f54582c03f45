"""The merchant's review queue of risk flags: list them, clear or void one (audited)."""

from __future__ import annotations

from handlers.merchant import MerchantHandler
from web.openapi import Reply, operation
from web.paging import Page
from web.risk import FlagDecision, FlagsQuery, RiskFlag, decide_flag, flag_page

FLAG = Reply("The flag, as decided", RiskFlag)


class RiskFlagsHandler(MerchantHandler):
    @operation("Risk flags, newest first", query=FlagsQuery,
               responses={200: Reply("A page of flags", Page[RiskFlag])})
    async def get(self) -> None:
        self.write_model(await flag_page(self.runtime, self.parse_query(FlagsQuery)))


class RiskFlagDecisionHandler(MerchantHandler):
    @operation("Clear a flag (what it held is released) or void it (its held commissions are cancelled through "
               "the ledger, its held withdrawal rejected and the amount returned)", body=FlagDecision,
               responses={200: FLAG}, errors=(404, 409))
    async def post(self, flag_id: str, decision: str) -> None:
        flag = await decide_flag(self, flag_id, decision, self.parse_body(FlagDecision).reason)
        self.write_model(RiskFlag.from_document(flag))
