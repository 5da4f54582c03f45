"""A member's own money: commissions and ledger entries, newest first."""

from __future__ import annotations

from miniapp_api.auth import MiniappHandler
from web.models import Commission, LedgerEntry
from web.openapi import Reply, operation
from web.pages import CommissionsQuery, commission_page
from web.paging import Page, TimePageQuery, time_cursor


class MyCommissionsHandler(MiniappHandler):
    @operation("My commissions, newest first", query=CommissionsQuery,
               responses={200: Reply("A page of commissions", Page[Commission])})
    async def get(self) -> None:
        self.write_model(await commission_page(self.runtime, self.member["_id"], self.parse_query(CommissionsQuery)))


class MyLedgerHandler(MiniappHandler):
    @operation("Every movement of my money, newest first", query=TimePageQuery,
               responses={200: Reply("A page of ledger entries", Page[LedgerEntry])})
    async def get(self) -> None:
        query = self.parse_query(TimePageQuery)
        entries = await self.runtime.ledger.page(self.member["_id"], query.limit, query.cursor)
        self.write_model(Page[LedgerEntry].of(entries, query.limit, LedgerEntry.from_document, time_cursor("at")))
