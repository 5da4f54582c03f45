"""The merchant's statements (结算单): the list, one with what the ledger says it settled, and the review of those
waiting for approval (above the settlement settings' review_above_fen)."""

from __future__ import annotations

from datetime import datetime, timezone

from pydantic import Field

from distribution.records import Record, Text
from handlers.merchant import MerchantHandler
from web.openapi import Reply, operation
from web.paging import Page
from web.statements import MerchantStatementsQuery, Statement, StatementDetail, statement_detail, statement_page

STATEMENTS_PATH = "/api/merchant/v1/statements"
STATEMENT = Reply("The statement, with the ledger's sum of what it settled", StatementDetail)


class StatementRejection(Record):
    """Why the merchant refused a statement; its commissions go to the next period's statement."""

    reason: Text = Field(max_length=500, description="kept with the statement and in the audit log")


def status_of(statement: dict) -> dict:
    """What the audit log keeps of a statement before and after a decision on it."""
    return {"status": statement["status"], "amount_fen": statement["amount_fen"]}


class StatementsHandler(MerchantHandler):
    @operation("Statements, newest first: all, of one promoter and/or in one status", query=MerchantStatementsQuery,
               responses={200: Reply("A page of statements", Page[Statement])})
    async def get(self) -> None:
        query = self.parse_query(MerchantStatementsQuery)
        self.write_model(await statement_page(self.runtime, query.member_id, query))


class StatementHandler(MerchantHandler):
    @operation("One statement, with the ledger's sum of its settled entries", responses={200: STATEMENT},
               errors=(404,))
    async def get(self, statement_id: str) -> None:
        self.write_model(await statement_detail(self.runtime, await self.runtime.statements.get(statement_id)))


class ApproveStatementHandler(MerchantHandler):
    @operation("Approve a statement awaiting review: what is left of each of its commissions settles and becomes "
               "withdrawable", responses={200: STATEMENT}, errors=(404, 409))
    async def post(self, statement_id: str) -> None:
        before = await self.runtime.statements.get(statement_id)
        after = await self.runtime.statements.approve(statement_id, datetime.now(timezone.utc))
        await self.audit("statement.approve", "statement", statement_id, status_of(before), status_of(after))
        self.write_model(await statement_detail(self.runtime, after))


class RejectStatementHandler(MerchantHandler):
    @operation("Reject a statement awaiting review: its commissions stay frozen and go to the next period's "
               "statement", body=StatementRejection, responses={200: STATEMENT}, errors=(404, 409))
    async def post(self, statement_id: str) -> None:
        rejection = self.parse_body(StatementRejection)
        before = await self.runtime.statements.get(statement_id)
        after = await self.runtime.statements.reject(statement_id, rejection.reason, datetime.now(timezone.utc))
        await self.audit("statement.reject", "statement", statement_id, status_of(before), status_of(after),
                         rejection.reason)
        self.write_model(await statement_detail(self.runtime, after))


ROUTES = [
    (STATEMENTS_PATH, StatementsHandler),
    (rf"{STATEMENTS_PATH}/(?P<statement_id>[^/]+)", StatementHandler),
    (rf"{STATEMENTS_PATH}/(?P<statement_id>[^/]+)/approve", ApproveStatementHandler),
    (rf"{STATEMENTS_PATH}/(?P<statement_id>[^/]+)/reject", RejectStatementHandler),
]
