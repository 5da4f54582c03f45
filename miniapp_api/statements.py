"""A promoter's own statements (结算单): their commissions of each settlement period, settled together."""

from __future__ import annotations

from miniapp_api.auth import MiniappHandler
from web.openapi import Reply, operation
from web.paging import Page
from web.statements import Statement, StatementsQuery, statement_page


class MyStatementsHandler(MiniappHandler):
    @operation("My statements, newest first", query=StatementsQuery,
               responses={200: Reply("A page of statements", Page[Statement])})
    async def get(self) -> None:
        self.write_model(await statement_page(self.runtime, self.member["_id"], self.parse_query(StatementsQuery)))
