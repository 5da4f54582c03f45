"""Promoter grades on disk: the sales totals they are judged on, and the record of upgrades.

- `promoter_totals`: `{_id: member_id, grade, own_settled_sales_fen, team_settled_sales_fen,
  graded_at}`. Settlement adds to the totals (and a clawback after settlement takes
  off) with `$inc`, in the settlement's (or the refund's) transaction.
- `grade_changes`: `{_id: "<member_id>:<grade>", member_id, from_grade, to_grade, at, reason,
  metrics}`: every upgrade, once (grades only go up, so each is reached once).
"""

from __future__ import annotations

from datetime import datetime

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from stores.writes import WriteSet

PROMOTER_TOTALS = "promoter_totals"
GRADE_CHANGES = "grade_changes"


def totals_update(member_id: str, own_fen: int, team_fen: int) -> UpdateOne:
    return UpdateOne(
        {"_id": member_id},
        {"$inc": {"own_settled_sales_fen": own_fen, "team_settled_sales_fen": team_fen}},
        upsert=True,
    )


class GradeStore:
    def __init__(self, db: AsyncDatabase):
        self.totals = db[PROMOTER_TOTALS]
        self.changes = db[GRADE_CHANGES]

    async def grades_of(self, member_ids: list[str]) -> dict[str, str]:
        """Member id -> grade, for those of `member_ids` that have one."""
        cursor = self.totals.find({"_id": {"$in": list(member_ids)}}, {"grade": 1})
        return {document["_id"]: document["grade"] async for document in cursor if document.get("grade")}

    async def totals_of(self, member_ids: list[str]) -> dict[str, dict]:
        """Member id -> its totals document, for those of `member_ids` that have one."""
        return {document["_id"]: document async for document in self.totals.find({"_id": {"$in": list(member_ids)}})}

    async def history(self, member_id: str) -> list[dict]:
        return await self.changes.find({"member_id": member_id}).sort("at", 1).to_list()

    @staticmethod
    def plan_upgrade(member_id: str, current: str | None, new_grade: str, reason: str, metrics: dict, at: datetime,
                     writes: WriteSet) -> None:
        """Raise the member's grade, if it is still `current`, and record the change (once per grade reached)."""
        writes.update(PROMOTER_TOTALS, UpdateOne({"_id": member_id, "grade": current},
                                                 {"$set": {"grade": new_grade, "graded_at": at}}, upsert=True))
        writes.insert(GRADE_CHANGES, [{
            "_id": f"{member_id}:{new_grade}", "member_id": member_id, "from_grade": current, "to_grade": new_grade,
            "at": at, "reason": reason, "metrics": metrics,
        }])
