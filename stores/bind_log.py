"""Every bind attempt, bound or refused, with its reason and source."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo.asynchronous.database import AsyncDatabase


BIND_LOG = "bind_log"


def bind_entry(*, member_id: str | None, upline_id: str | None, source: str, result: str, at: datetime,
               reason: str | None = None, previous_upline_id: str | None = None,
               detail: dict[str, Any] | None = None) -> dict:
    return {"_id": str(ObjectId()), "member_id": member_id, "upline_id": upline_id,
            "previous_upline_id": previous_upline_id, "source": source, "result": result, "reason": reason, "at": at,
            **(detail or {})}


class BindLog:
    def __init__(self, db: AsyncDatabase):
        self.collection = db[BIND_LOG]

    async def record(self, **fields: Any) -> str:
        entry = bind_entry(**fields)
        await self.collection.insert_one(entry)
        return entry["_id"]

    async def bound_between(self, after_id: str, before_id: str, limit: int) -> list[dict]:
        """`{_id, upline_id, at, template}` of the first `limit` bound entries with ids strictly between the two, in
        id order (`template`: the poster template that brought the member, when known)."""
        return await self.collection.find(
            {"result": "bound", "_id": {"$gt": after_id, "$lt": before_id}}, {"upline_id": 1, "at": 1, "template": 1}
        ).sort("_id", 1).limit(limit).to_list()

    async def page(self, member_id: str, limit: int, before_id: str | None) -> list[dict]:
        query: dict[str, Any] = {"member_id": member_id}
        if before_id:
            query["_id"] = {"$lt": before_id}
        return await self.collection.find(query).sort("_id", -1).limit(limit).to_list()

