"""Statements (结算单) as both APIs and the console show them, a page at a time."""

from __future__ import annotations

from typing import Self

from pydantic import Field

from distribution.settlement import SettlementPolicy, StatementStatus
from services.runtime import Runtime
from web.models import Answer, Fen, Stored, Time
from web.paging import Page, TimePageQuery, time_cursor


class StatementsQuery(TimePageQuery):
    status: StatementStatus | None = None


class MerchantStatementsQuery(StatementsQuery):
    member_id: str | None = Field(None, max_length=64, description="only this promoter's statements")


class StatementLine(Answer):
    commission_id: str
    order_no: str
    amount_fen: Fen = Field(description="what the commission contributes: what was left of it after refunds")


class Statement(Stored):
    """One promoter's commissions of one settlement period, settled together."""

    member_id: str
    policy: SettlementPolicy
    period_start: Time = Field(description="the period's first moment (midnight in China)")
    period_end: Time = Field(description="the moment after the period (midnight in China)")
    status: StatementStatus
    amount_fen: Fen = Field(description="settled: what settled; awaiting_review and rejected: what it asks for")
    built_fen: Fen = Field(description="what it asked for when it was built (refunds may lower it before approval)")
    lines: list[StatementLine]
    reason: str | None = Field(None, description="rejected: the merchant's reason")
    created_at: Time
    decided_at: Time | None = Field(None, description="when the merchant approved or rejected it")

    @classmethod
    def from_document(cls, document: dict) -> Self:
        period = document["period"]
        return super().from_document({**document, "period_start": period["start"], "period_end": period["end"]})


class StatementDetail(Statement):
    ledger_fen: Fen = Field(description="what the ledger's settled entries naming this statement add up to: "
                                        "amount_fen once settled, 0 before")


async def statement_page(runtime: Runtime, member_id: str | None, query: StatementsQuery) -> Page[Statement]:
    """Newest first; `member_id` None: everyone's."""
    documents = await runtime.statements.page(member_id, query.status, query.limit, query.cursor)
    return Page[Statement].of(documents, query.limit, Statement.from_document, time_cursor("created_at"))


async def statement_detail(runtime: Runtime, statement: dict) -> StatementDetail:
    return StatementDetail.from_document({**statement, "ledger_fen": await runtime.statements.ledger_fen(
        statement["_id"])})
