"""The audit log on disk: `audit_log {_id, at, actor: {kind, name, role?}, ip, action, target: {kind, id},
before, after, reason?}`.

Append-only: this store inserts and reads, and no code path updates or deletes an entry.
"""

from __future__ import annotations

from typing import Any

from bson import ObjectId
from pymongo import DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

AUDIT_LOG = "audit_log"


class AuditLogStore:
    def __init__(self, db: AsyncDatabase):
        self.entries = db[AUDIT_LOG]

    async def append(self, entry: dict[str, Any]) -> str:
        entry = {"_id": str(ObjectId()), **entry}
        await self.entries.insert_one(entry)
        return entry["_id"]

    async def page(self, target_kind: str | None, target_id: str | None, actor: str | None, before_id: str | None,
                   limit: int) -> list[dict[str, Any]]:
        """Newest first; ids are ObjectIds as strings, so they sort by time."""
        query: dict[str, Any] = {}
        if target_kind:
            query["target.kind"] = target_kind
        if target_id:
            query["target.id"] = target_id
        if actor:
            query["actor.name"] = actor
        if before_id:
            query["_id"] = {"$lt": before_id}
        return await self.entries.find(query).sort("_id", DESCENDING).limit(limit).to_list()
