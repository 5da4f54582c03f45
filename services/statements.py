"""Statements (结算单): under a settlement period policy, each promoter's due commissions settle together once a
period has closed, at once or after the merchant's approval (`distribution.settlement` has the rules).

Building one is one transaction: the statement's insert, whose `_id` is unique per promoter and period, with
the settlement of its commissions (or, above the review threshold, their holding: each names the statement
and stays frozen). Two runs of the job racing to build it insert it once: the loser's transaction fails on the
duplicate key, or on a commission the winner changed, and changes nothing. A refund racing with a build
changes a commission the build guards, so the build is read again.

Every settled entry names its statement, so that the ledger alone gives what a statement settled.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone

from pymongo import AsyncMongoClient, UpdateMany
from pymongo.asynchronous.database import AsyncDatabase

from distribution.errors import NotFound, Refused
from distribution.settlement import (
    SettlementPolicy,
    SettlementSettings,
    StatementLine,
    StatementStatus,
    approved_lines,
    draft,
    last_closed,
    statement_id,
)
from services.commissions import CommissionService, CommissionStatus, frozen_as_read, remaining_fen
from services.grades import GradeService
from services.merchant_settings import MerchantSettings
from stores.members import MemberStore
from stores.orders import COMMISSIONS
from stores.statements import STATEMENTS, StatementStore, line_documents, lines_of, period_document
from stores.writes import Conflict, WriteSet, commit

log = logging.getLogger(__name__)

ATTEMPTS = 5  # reads and tries of one statement while refunds keep changing its commissions


class StatementNotFound(NotFound):
    code = "statement_not_found"


class NotAwaitingReview(Refused):
    code = "not_awaiting_review"


class StatementChanged(Refused):
    code = "conflict"


class MemberFrozen(Refused):
    code = "member_frozen"


@dataclass
class Built:
    """What one run of the job did: statements built (settled or held for review), commissions settled."""

    statements: list[str] = field(default_factory=list)
    settled: int = 0
    settled_fen: int = 0
    members: set[str] = field(default_factory=set)


class StatementService:
    def __init__(self, client: AsyncMongoClient, db: AsyncDatabase, merchant_settings: MerchantSettings,
                 commissions: CommissionService, grades: GradeService):
        self.client = client
        self.db = db
        self.store = StatementStore(db)
        self.members = MemberStore(db)
        self.merchant_settings = merchant_settings
        self.commissions = commissions
        self.grades = grades

    async def get(self, statement_id: str, member_id: str | None = None) -> dict:
        """The statement; with `member_id`, only if it is that promoter's."""
        statement = await self.store.get(statement_id)
        if statement is None or (member_id is not None and statement["member_id"] != member_id):
            raise StatementNotFound(f"no statement {statement_id}")
        return statement

    async def page(self, member_id: str | None, status: str | None, limit: int,
                   after: tuple[datetime, str] | None) -> list[dict]:
        return await self.store.page(member_id, status, limit, after, datetime.now(timezone.utc))

    async def ledger_fen(self, statement_id: str) -> int:
        """What the ledger's entries naming the statement settled: its amount, once settled."""
        return await self.store.ledger_fen(statement_id)

    async def build_due(self, now: datetime | None = None) -> Built:
        """Under a period policy, the statements of the last closed period not yet built: one per promoter with
        commissions due by its end (carried ones included), unless it is below the minimum."""
        now = now or datetime.now(timezone.utc)
        built = Built()
        settings = await self.merchant_settings.get(SettlementSettings)
        if settings.policy is SettlementPolicy.PER_COMMISSION:
            return built
        period = last_closed(settings, now)
        frozen = set(await self.members.frozen_ids())  # held while frozen: a later period's statement takes them
        members = [member_id for member_id in await self.store.due_members(period.end) if member_id not in frozen]
        done = await self.store.existing([statement_id(member_id, period) for member_id in members])
        for member_id in members:
            if statement_id(member_id, period) in done:
                continue  # built already: what is due again (after a rejection) waits for the next period
            for _ in range(ATTEMPTS):
                try:
                    await self._build(settings, member_id, period, now, built)
                    break
                except Conflict:
                    log.info("statement %s raced with a refund or another run; read again",
                             statement_id(member_id, period))
        if built.members:
            await self.grades.evaluate(sorted(built.members), "settlement", now)
        return built

    async def _build(self, settings: SettlementSettings, member_id: str, period, now: datetime, built: Built) -> None:
        sid = statement_id(member_id, period)
        if await self.store.get(sid) is not None:
            return  # the other run built it
        commissions = await self.store.due_commissions(member_id, period.end)
        made = draft(settings, [StatementLine(each["_id"], each["order_no"], remaining_fen(each))
                                for each in commissions])
        if made.status is None:
            return  # carried to the next period
        included = {line.commission_id for line in made.lines}
        commissions = [each for each in commissions if each["_id"] in included]
        writes = WriteSet()
        writes.insert(STATEMENTS, [{
            "_id": sid, "member_id": member_id, "policy": settings.policy.value, "period": period_document(period),
            "lines": line_documents(made.lines), "amount_fen": made.amount_fen, "built_fen": made.amount_fen,
            # Written now: lists page by it below the clock, whatever moment the job was asked to settle as of.
            "status": made.status.value, "reason": None, "created_at": datetime.now(timezone.utc), "decided_at": None,
        }])
        settled: set[str] = set()
        if made.status is StatementStatus.SETTLED:
            settled = await self.commissions.add_settlement(writes, commissions, now, sid)
        else:
            for commission in commissions:
                writes.guard(COMMISSIONS, frozen_as_read(commission),
                             {"$set": {"statement_id": sid, "updated_at": now}})
        await commit(self.client, self.db, writes)
        built.statements.append(sid)
        if settled:
            built.settled += len(commissions)
            built.settled_fen += made.amount_fen
            built.members.update(settled)

    async def approve(self, statement_id: str, now: datetime) -> dict:
        """Settle a statement waiting for review: what is left of each of its commissions now (those refunded in
        full meanwhile are skipped); its lines and amount become what settled."""
        for _ in range(ATTEMPTS):
            statement = await self._awaiting(statement_id)
            promoter = await self.members.get(statement["member_id"])
            if promoter is not None and promoter.get("frozen"):
                raise MemberFrozen(f"the promoter of statement {statement_id} is frozen: it waits until unfrozen")
            commissions = await self.store.commissions_of([line.commission_id for line in lines_of(statement)])
            held = [each for each in commissions
                    if each["status"] == CommissionStatus.FROZEN and each.get("statement_id") == statement_id]
            lines = approved_lines(lines_of(statement), {each["_id"]: remaining_fen(each) for each in held})
            writes = WriteSet()
            members = await self.commissions.add_settlement(writes, held, now, statement_id)
            writes.guard(STATEMENTS, {"_id": statement_id, "status": StatementStatus.AWAITING_REVIEW.value}, {"$set": {
                "status": StatementStatus.SETTLED.value, "lines": line_documents(lines),
                "amount_fen": sum(line.amount_fen for line in lines), "decided_at": now}})
            try:
                await commit(self.client, self.db, writes)
            except Conflict:
                continue  # a refund changed a commission meanwhile, or someone decided first: read again
            if members:
                await self.grades.evaluate(sorted(members), "settlement", now)
            return await self.get(statement_id)
        raise StatementChanged(f"statement {statement_id} kept changing while being approved; try again")

    async def reject(self, statement_id: str, reason: str | None, now: datetime) -> dict:
        """Release a statement's commissions, still frozen, to be due again: the next period's statement takes
        them (and, above the review threshold, asks for approval again)."""
        await self._awaiting(statement_id)
        writes = WriteSet()
        writes.guard(STATEMENTS, {"_id": statement_id, "status": StatementStatus.AWAITING_REVIEW.value},
                     {"$set": {"status": StatementStatus.REJECTED.value, "reason": reason, "decided_at": now}})
        writes.update(COMMISSIONS, UpdateMany({"statement_id": statement_id, "status": CommissionStatus.FROZEN.value},
                                              {"$set": {"statement_id": None, "updated_at": now}}))
        try:
            await commit(self.client, self.db, writes)
        except Conflict:
            raise NotAwaitingReview(f"statement {statement_id} was decided meanwhile") from None
        return await self.get(statement_id)

    async def _awaiting(self, statement_id: str) -> dict:
        statement = await self.get(statement_id)
        if statement["status"] != StatementStatus.AWAITING_REVIEW:
            raise NotAwaitingReview(f"statement {statement_id} is {statement['status']}, not awaiting review")
        return statement
