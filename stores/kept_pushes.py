"""Pushes the /wechat door answered while Redis was unavailable, kept in MongoDB until they are replayed.

One document per signed (timestamp, nonce), so the nonce stays refused for any
other push while Redis cannot remember it.
"""

from __future__ import annotations

from datetime import datetime

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

KEPT_PUSHES = "pending_pushes"


class KeptPushes:
    def __init__(self, db: AsyncDatabase):
        self.collection = db[KEPT_PUSHES]

    async def keep(self, nonce_id: str, push_id: str, xml: str, answered: bool, at: datetime) -> bool:
        """Keep the push that came with `nonce_id`; False when that nonce came with another push.

        `answered`: the door gave the full reply already, so the replay only hands the nonce to Redis."""
        for _ in range(2):
            try:
                await self.collection.insert_one({"_id": nonce_id, "push_id": push_id, "xml": xml,
                                                  "answered": answered, "received_at": at})
                return True
            except DuplicateKeyError:
                earlier = await self.collection.find_one({"_id": nonce_id}, {"push_id": 1})
            if earlier is not None:  # else replayed in between: keep it again
                return earlier["push_id"] == push_id
        return False

    async def oldest(self, limit: int) -> list[dict]:
        return await self.collection.find().sort([("received_at", 1), ("_id", 1)]).limit(limit).to_list()

    async def forget(self, nonce_id: str) -> None:
        await self.collection.delete_one({"_id": nonce_id})
