"""Promoter grades: the sales totals they are judged on, their evaluation, and the record of upgrades.

The totals and the upgrades are kept by `stores.grades`. Evaluation
(`evaluate`) runs after each settlement, for the promoters it paid, and after
binds, for the uplines that gained direct members; the decision is the
domain's (`distribution.grades.upgrade`).

The merchant may also set a grade by hand (`set_grade`), up or down, with a
reason. Evaluation only ever raises a grade: a promoter set below a grade whose
conditions they meet is raised to it again at their next evaluation.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from distribution import errors
from distribution.grades import GradeSettings, PromoterMetrics, upgrade
from services.members import MemberNotFound
from services.merchant_settings import MerchantSettings
from stores.grades import GradeStore
from stores.members import MemberStore
from stores.writes import Conflict, WriteSet, commit

log = logging.getLogger(__name__)


class GradeRefused(errors.Refused):
    def __init__(self, code: str, message: str):
        super().__init__(message, code=code)


class GradeService:
    def __init__(self, client: AsyncMongoClient, db: AsyncDatabase, merchant_settings: MerchantSettings):
        self.client = client
        self.db = db
        self.store = GradeStore(db)
        self.members = MemberStore(db)
        self.merchant_settings = merchant_settings

    async def grades_of(self, member_ids: list[str]) -> dict[str, str]:
        return await self.store.grades_of(member_ids) if member_ids else {}

    async def standing(self, member_id: str) -> dict:
        totals = (await self.store.totals_of([member_id])).get(member_id, {})
        direct_count = (await self.members.direct_counts([member_id])).get(member_id, 0)
        metrics = PromoterMetrics.from_mapping(totals, direct_count)
        return {"member_id": member_id, "grade": totals.get("grade"), **metrics.__dict__}

    async def history(self, member_id: str) -> list[dict]:
        return await self.store.history(member_id)

    async def set_grade(self, member_id: str, grade: str | None, reason: str, by: str,
                        now: datetime | None = None) -> dict:
        """Give the member `grade` (None: no grade) by hand, `by` whom and why; returns the change recorded.
        Invalid for a grade the settings do not name; GradeRefused when the member has it already or its grade
        changed meanwhile; MemberNotFound."""
        if await self.members.get(member_id) is None:
            raise MemberNotFound(f"no member {member_id}")
        settings = await self.merchant_settings.get(GradeSettings)
        if grade is not None and settings.rank(grade) < 0:
            named = ", ".join(each.name for each in settings.grades) or "none"
            raise errors.Invalid(f"no grade {grade!r}: the grades are {named}", field="grade")
        current = (await self.store.totals_of([member_id])).get(member_id, {}).get("grade")
        if current == grade:
            raise GradeRefused("same_grade", f"the member's grade is {grade or 'none'} already")
        record = {"reason": reason, "by": by}
        writes = WriteSet()
        self.store.plan_change(member_id, current, grade, now or datetime.now(timezone.utc), record, writes)
        try:
            await commit(self.client, self.db, writes)
        except Conflict:
            raise GradeRefused("conflict", "the member's grade changed meanwhile: look again") from None
        log.info("member %s set from grade %s to %s by hand", member_id, current, grade)
        return {"member_id": member_id, "from_grade": current, "to_grade": grade, **record}

    async def evaluate(self, member_ids: list[str], reason: str, now: datetime | None = None) -> dict[str, str]:
        """Upgrade whoever now qualifies for a higher grade; returns member id -> new grade."""
        settings = await self.merchant_settings.get(GradeSettings)
        if not settings.grades or not member_ids:
            return {}
        now = now or datetime.now(timezone.utc)
        upgraded: dict[str, str] = {}
        pending = list(dict.fromkeys(member_ids))
        for _ in range(3):  # a member whose totals changed meanwhile is judged again on fresh figures
            totals = await self.store.totals_of(pending)
            directs = await self.members.direct_counts(pending)
            contended = []
            for member_id in pending:
                current = totals.get(member_id, {}).get("grade")
                metrics = PromoterMetrics.from_mapping(totals.get(member_id, {}), directs.get(member_id, 0))
                new_grade = upgrade(current, metrics, settings)
                if new_grade is None:
                    continue
                writes = WriteSet()
                self.store.plan_upgrade(member_id, current, new_grade, reason, metrics.__dict__, now, writes)
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
