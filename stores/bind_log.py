"""Every bind attempt, bound or refused, with its reason and source."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase


class BindLog:
    def __init__(self, db: AsyncDatabase):
        self.collection = db["bind_log"]

    async def record(self, *, member_id: str | None, upline_id: str | None, source: str, result: str,
                     at: datetime, reason: str | None = None, previous_upline_id: str | None = None,
                     detail: dict[str, Any] | None = None, session: AsyncClientSession | None = None) -> str:
        entry_id = str(ObjectId())
        await self.collection.insert_one(
            {"_id": entry_id, "member_id": member_id, "upline_id": upline_id, "previous_upline_id": previous_upline_id,
             "source": source, "result": result, "reason": reason, "at": at, **(detail or {})},
            session=session,
        )
        return entry_id

    async def page(self, member_id: str, limit: int, before_id: str | None) -> list[dict]:
        query: dict[str, Any] = {"member_id": member_id}
        if before_id:
            query["_id"] = {"$lt": before_id}
        return await self.collection.find(query).sort("_id", -1).limit(limit).to_list()

    async def pending_notifications(self, before: datetime, limit: int) -> list[str]:
        cursor = self.collection.find({"notify": "pending", "at": {"$lt": before}}, {"_id": 1}).limit(limit)
        return [entry["_id"] async for entry in cursor]

    async def claim_notification(self, entry_id: str) -> dict | None:
        """At most one sender per bind: pending -> sending, or None if another has it or it is done."""
        claimed = await self.collection.update_one({"_id": entry_id, "notify": "pending"},
                                                   {"$set": {"notify": "sending"}})
        return await self.collection.find_one({"_id": entry_id}) if claimed.modified_count else None

    async def finish_notification(self, entry_id: str, outcome: str) -> None:
        """`sent`, `skipped` (nobody to tell), or back to `pending` for a retry."""
        await self.collection.update_one({"_id": entry_id, "notify": "sending"}, {"$set": {"notify": outcome}})
