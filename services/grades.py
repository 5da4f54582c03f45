"""Promoter grades: the sales totals they are judged on, their evaluation, and the record of upgrades.

- `promoter_totals`: `{_id: member_id, grade, own_settled_sales_fen, team_settled_sales_fen,
  graded_at}`. Settlement adds to the totals (and a clawback after settlement takes
  off) with `$inc`, in the settlement's (or the refund's) transaction.
- `grade_changes`: `{_id: "<member_id>:<grade>", member_id, from_grade, to_grade, at, reason,
  metrics}`: every upgrade, once (grades only go up, so each is reached once).

Evaluation (`evaluate`) runs after each settlement, for the promoters it paid,
and after binds, for the uplines that gained direct members; the decision is
the domain's (`distribution.grades.upgrade`).
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from pymongo import AsyncMongoClient, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from distribution.grades import GradeSettings, PromoterMetrics, upgrade
from services.merchant_settings import MerchantSettings
from stores.writes import Conflict, WriteSet, commit

log = logging.getLogger(__name__)

PROMOTER_TOTALS = "promoter_totals"
GRADE_CHANGES = "grade_changes"


def totals_update(member_id: str, own_fen: int, team_fen: int) -> UpdateOne:
    return UpdateOne(
        {"_id": member_id},
        {"$inc": {"own_settled_sales_fen": own_fen, "team_settled_sales_fen": team_fen}},
        upsert=True,
    )


class GradeService:
    def __init__(self, client: AsyncMongoClient, db: AsyncDatabase, merchant_settings: MerchantSettings):
        self.client = client
        self.db = db
        self.totals = db[PROMOTER_TOTALS]
        self.changes = db[GRADE_CHANGES]
        self.members = db["members"]
        self.merchant_settings = merchant_settings

    async def grades_of(self, member_ids: list[str]) -> dict[str, str]:
        if not member_ids:
            return {}
        cursor = self.totals.find({"_id": {"$in": list(member_ids)}}, {"grade": 1})
        return {document["_id"]: document["grade"] async for document in cursor if document.get("grade")}

    async def standing(self, member_id: str) -> dict:
        totals = await self.totals.find_one({"_id": member_id}) or {}
        member = await self.members.find_one({"_id": member_id}, {"direct_count": 1}) or {}
        metrics = PromoterMetrics.from_mapping(totals, int(member.get("direct_count", 0)))
        return {"member_id": member_id, "grade": totals.get("grade"), **metrics.__dict__}

    async def history(self, member_id: str) -> list[dict]:
        return await self.changes.find({"member_id": member_id}).sort("at", 1).to_list()

    async def evaluate(self, member_ids: list[str], reason: str, now: datetime | None = None) -> dict[str, str]:
        """Upgrade whoever now qualifies for a higher grade; returns member id -> new grade."""
        settings = await self.merchant_settings.get(GradeSettings)
        if not settings.grades or not member_ids:
            return {}
        now = now or datetime.now(timezone.utc)
        upgraded: dict[str, str] = {}
        pending = list(dict.fromkeys(member_ids))
        for _ in range(3):  # a member whose totals changed meanwhile is judged again on fresh figures
            totals = {document["_id"]: document async for document in self.totals.find({"_id": {"$in": pending}})}
            directs = {document["_id"]: int(document.get("direct_count", 0)) async for document in
                       self.members.find({"_id": {"$in": pending}}, {"direct_count": 1})}
            contended = []
            for member_id in pending:
                current = totals.get(member_id, {}).get("grade")
                metrics = PromoterMetrics.from_mapping(totals.get(member_id, {}), directs.get(member_id, 0))
                new_grade = upgrade(current, metrics, settings)
                if new_grade is None:
                    continue
                writes = WriteSet()
                writes.update(PROMOTER_TOTALS, UpdateOne({"_id": member_id, "grade": current},
                                                         {"$set": {"grade": new_grade, "graded_at": now}},
                                                         upsert=True))
                writes.insert(GRADE_CHANGES, [{
                    "_id": f"{member_id}:{new_grade}", "member_id": member_id, "from_grade": current,
                    "to_grade": new_grade, "at": now, "reason": reason, "metrics": metrics.__dict__,
                }])
                try:
                    await commit(self.client, self.db, writes)
                except Conflict:
                    contended.append(member_id)
                    continue
                upgraded[member_id] = new_grade
                log.info("member %s upgraded %s -> %s (%s)", member_id, current, new_grade, reason)
            if not contended:
                break
            pending = contended
        return upgraded
