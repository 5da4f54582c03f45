"""Member documents in MongoDB: the only module that knows their shape on disk."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bson import ObjectId
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError


def new_member_id() -> str:
    return str(ObjectId())


def new_member_fields(created_at: datetime) -> dict:
    return {
        "_id": new_member_id(),
        "created_at": created_at,
        "nickname": None,
        "avatar_url": None,
        "upline_id": None,
        "ancestor_ids": [],
        "bound_at": None,
        "bind_source": None,
        "direct_count": 0,
        "team_count": 0,
    }


@dataclass(frozen=True)
class Upserted:
    member: dict
    created: bool


class MemberStore:
    def __init__(self, db: AsyncDatabase):
        self.collection = db["members"]

    async def get(self, member_id: str) -> dict | None:
        return await self.collection.find_one({"_id": member_id})

    async def by_oa_openid(self, openid: str) -> dict | None:
        return await self.collection.find_one({"oa_openid": openid})

    async def mark_oa_subscribed(self, openid: str, subscribed: bool, at: datetime) -> Upserted:
        """Create the member on first sight, else flip `subscribed`; never deletes."""
        changes = {"subscribed": subscribed, ("subscribed_at" if subscribed else "unsubscribed_at"): at}
        for attempt in range(2):
            try:
                result = await self.collection.update_one(
                    {"oa_openid": openid},
                    {"$set": changes, "$setOnInsert": new_member_fields(at)},
                    upsert=True,
                )
                break
            except DuplicateKeyError:
                # Two first pushes raced to insert; the loser's retry updates the winner's document.
                if attempt:
                    raise
        member = await self.by_oa_openid(openid)
        return Upserted(member, created=result.upserted_id is not None)
