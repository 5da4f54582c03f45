"""Promoter grades on disk: a promoter's lifetime totals, the grade they hold, and the record of changes.

- `promoter_totals`: `{_id: member_id, grade, own_settled_sales_fen, team_settled_sales_fen,
  graded_at, orders_brought, sales_brought_fen, withdrawn_fen}`. Settlement adds to the settled
  totals (and a clawback after settlement takes off), posting an order's commissions adds the order
  to what each beneficiary brought (`brought_update`), and a paid withdrawal to what they withdrew
  (`withdrawn_update`): each with `$inc`, in the transaction of what it counts.
- The grade is also on the member (`members.grade`, set in the same transaction), where the member
  search filters by it.
- `grade_changes`: `{_id, member_id, from_grade, to_grade, at, reason, metrics}` for an upgrade by
  evaluation, `{..., by}` for a change by hand: every change once (a change is guarded on the grade
  it changes from).
  The chain-move mode's upgrade of an agent to a boss is recorded there too, as
  `{_id: "role:<member_id>:boss", member_id, from_role, to_role, at, reason, metrics}` (`role_upgrade`):
  once, since a role only goes up.
"""

from __future__ import annotations

from datetime import datetime

from bson import ObjectId
from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from stores.members import MEMBERS
from stores.writes import Increment, WriteSet

PROMOTER_TOTALS = "promoter_totals"
GRADE_CHANGES = "grade_changes"


def totals_update(member_id: str, own_fen: int, team_fen: int) -> Increment:
    return Increment(member_id, {"own_settled_sales_fen": own_fen, "team_settled_sales_fen": team_fen})


def brought_update(member_id: str, paid_fen: int) -> Increment:
    """One more order brought by the promoter (one of its commissions' beneficiaries), of `paid_fen`."""
    return Increment(member_id, {"orders_brought": 1, "sales_brought_fen": paid_fen})


def withdrawn_update(member_id: str, amount_fen: int) -> Increment:
    """A withdrawal of `amount_fen` (its fee included) paid out to the promoter."""
    return Increment(member_id, {"withdrawn_fen": amount_fen})


def role_upgrade(member_id: str, from_role: str, to_role: str, at: datetime, reason: str, metrics: dict) -> dict:
    """The grade history's record of a chain-move role upgrade; its id keeps it to one per member and role."""
    return {"_id": f"role:{member_id}:{to_role}", "member_id": member_id, "from_role": from_role,
            "to_role": to_role, "at": at, "reason": reason, "metrics": metrics}


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
        """Raise the member's grade, if it is still `current`, and record the change."""
        GradeStore.plan_change(member_id, current, new_grade, at, {"reason": reason, "metrics": metrics}, writes)

    @staticmethod
    def plan_change(member_id: str, current: str | None, new_grade: str | None, at: datetime, record: dict,
                    writes: WriteSet) -> None:
        """Give the member `new_grade` (None: none), if its grade is still `current`, and record the change with
        `record`'s fields. A grade changed meanwhile fails the step: the totals document, found no longer at
        `current`, is inserted again under its own id."""
        writes.update(PROMOTER_TOTALS, UpdateOne({"_id": member_id, "grade": current},
                                                 {"$set": {"grade": new_grade, "graded_at": at}}, upsert=True))
        writes.update(MEMBERS, UpdateOne({"_id": member_id}, {"$set": {"grade": new_grade}}))
        writes.insert(GRADE_CHANGES, [{"_id": str(ObjectId()), "member_id": member_id, "from_grade": current,
                                       "to_grade": new_grade, "at": at, **record}])
