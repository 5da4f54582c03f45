"""Promoter applications and their review.

`applications`: `{_id, member_id, name, phone_sealed, reason, status: pending | approved | rejected,
created_at, decision_note, decided_at}`; a unique index allows one pending application per member.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from distribution.applications import ApplicationStatus


class ApplicationStore:
    def __init__(self, db: AsyncDatabase):
        self.collection = db["applications"]

    async def add(self, member_id: str, name: str, phone_sealed: str, reason: str, at: datetime) -> dict:
        """DuplicateKeyError while the member has one pending (a unique index on pending ones)."""
        application = {"_id": str(ObjectId()), "member_id": member_id, "name": name, "phone_sealed": phone_sealed,
                       "reason": reason, "status": ApplicationStatus.PENDING.value, "created_at": at}
        await self.collection.insert_one(application)
        return application

    async def get(self, application_id: str) -> dict | None:
        return await self.collection.find_one({"_id": application_id})

    async def decide(self, application_id: str, status: ApplicationStatus, note: str | None, at: datetime,
                     session: AsyncClientSession) -> bool:
        """pending -> status, once: False when it was already decided."""
        decided = await self.collection.update_one(
            {"_id": application_id, "status": ApplicationStatus.PENDING.value},
            {"$set": {"status": status.value, "decision_note": note, "decided_at": at}}, session=session)
        return decided.modified_count == 1

    async def count(self, status: ApplicationStatus) -> int:
        """How many are in `status`: an indexed count, for the small sets (pending ones) a dashboard shows."""
        return await self.collection.count_documents({"status": status.value})

    async def page(self, status: ApplicationStatus | None, limit: int, before_id: str | None) -> list[dict]:
        query: dict[str, Any] = {}
        if status:
            query["status"] = ApplicationStatus(status).value
        if before_id:
            query["_id"] = {"$lt": before_id}
        return await self.collection.find(query).sort("_id", -1).limit(limit).to_list()
