"""Statements (结算单) on disk, and the commissions and ledger entries a statement is read with.

- `statements`: `{_id: "<member id>:<period key>", member_id, policy, period: {start, end}, lines:
  [{commission_id, order_no, amount_fen}], amount_fen, built_fen, status, reason, created_at, decided_at}`.
  The `_id` is unique per promoter and period (`distribution.settlement.statement_id`), so a statement is
  inserted once however many runs of the job race to build it. `amount_fen` is what settled (the sum of the
  ledger's entries naming the statement) once settled, what is asked for until then; `built_fen` what it
  asked for when it was built.
- A commission a statement holds (awaiting review) or settled names it in `statement_id`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from distribution.ledger import Bucket, EntryKind
from distribution.settlement import Period, StatementLine
from stores.ledger import LEDGER_ENTRIES
from stores.orders import COMMISSIONS, NOT_HELD
from stores.paging import newest_first

STATEMENTS = "statements"


def line_documents(lines: tuple[StatementLine, ...]) -> list[dict]:
    return [{"commission_id": line.commission_id, "order_no": line.order_no, "amount_fen": line.amount_fen}
            for line in lines]


def lines_of(statement: dict) -> tuple[StatementLine, ...]:
    return tuple(StatementLine(each["commission_id"], each["order_no"], each["amount_fen"])
                 for each in statement["lines"])


def period_document(period: Period) -> dict:
    return {"start": period.start, "end": period.end}


class StatementStore:
    def __init__(self, db: AsyncDatabase):
        self.statements = db[STATEMENTS]
        self.commissions = db[COMMISSIONS]
        self.entries = db[LEDGER_ENTRIES]

    async def get(self, statement_id: str) -> dict | None:
        return await self.statements.find_one({"_id": statement_id})

    async def existing(self, statement_ids: list[str]) -> set[str]:
        """Which of `statement_ids` have been built, in one read."""
        return {each["_id"] async for each in self.statements.find({"_id": {"$in": statement_ids}}, {"_id": 1})}

    async def page(self, member_id: str | None, status: str | None, limit: int, after: tuple[datetime, str] | None,
                   now: datetime) -> list[dict]:
        """Statements newest first by `created_at`, of one promoter and/or in one status, after the cursor."""
        query: dict[str, Any] = {}
        if member_id:
            query["member_id"] = member_id
        if status:
            query["status"] = status
        return await newest_first(self.statements, query, "created_at", limit, after, now)

    async def due_members(self, before: datetime) -> list[str]:
        """The promoters with frozen commissions due before `before` that no statement holds."""
        rows = await self.commissions.aggregate([
            {"$match": _due(before)},
            {"$group": {"_id": "$beneficiary_id"}},
        ])
        return sorted([row["_id"] async for row in rows])

    async def due_commissions(self, member_id: str, before: datetime) -> list[dict]:
        return await self.commissions.find({"beneficiary_id": member_id, **_due(before)}).to_list()

    async def commissions_of(self, commission_ids: list[str]) -> list[dict]:
        return await self.commissions.find({"_id": {"$in": commission_ids}}).to_list()

    async def ledger_fen(self, statement_id: str) -> int:
        """What the ledger says the statement settled: its settled entries into available, added up."""
        rows = await self.entries.aggregate([
            {"$match": {"statement_id": statement_id, "kind": EntryKind.COMMISSION_SETTLED.value,
                        "bucket": Bucket.AVAILABLE.value}},
            {"$group": {"_id": None, "fen": {"$sum": "$amount_fen"}}},
        ])
        return sum([int(row["fen"]) async for row in rows])


def _due(before: datetime) -> dict:
    return {"status": "frozen", "unfreeze_at": {"$lt": before}, "statement_id": None, **NOT_HELD}
