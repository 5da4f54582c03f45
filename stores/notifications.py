"""Notifications and subscription consents in MongoDB.

- `notifications`: `{_id: idempotency key, kind, audience, member_id, openid, data, status: pending |
  sent | refused | skipped | failed, channel, template_id, consent_taken, attempts, error, created_at, retry_at,
  finished_at}`. One document per (event, recipient): the key makes a second record of the same notification a
  no-op, and the status makes a second send of it one. `attempts` counts the sends WeChat answered with an error
  or that ended the record; who is sending a record at the moment is a lock in Redis (`services.notifications`).
- `subscription_consents`: `{_id: "<member_id>:<template_id>", member_id, template_id, unused}`:
  one mini-program consent (wx.requestSubscribeMessage "accept") allows one send.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

NOTIFICATIONS = "notifications"
CONSENTS = "subscription_consents"


def consent_key(member_id: str, template_id: str) -> str:
    return f"{member_id}:{template_id}"


class NotificationStore:
    def __init__(self, db: AsyncDatabase):
        self.notifications = db[NOTIFICATIONS]
        self.consents = db[CONSENTS]

    async def insert(self, documents: list[dict]) -> list[str]:
        """The ids of the documents that were new; those already recorded are left as they are."""
        if not documents:
            return []
        try:
            await self.notifications.insert_many(documents, ordered=False)
        except BulkWriteError as error:
            duplicates = {each["index"] for each in error.details.get("writeErrors", []) if each.get("code") == 11000}
            if len(duplicates) != len(error.details.get("writeErrors", [])):
                raise
            return [document["_id"] for index, document in enumerate(documents) if index not in duplicates]
        return [document["_id"] for document in documents]

    async def get(self, notification_id: str) -> dict | None:
        return await self.notifications.find_one({"_id": notification_id})

    async def recorded(self, notification_ids: list[str]) -> set[str]:
        """Those of the ids that are recorded already."""
        if not notification_ids:
            return set()
        return {document["_id"] async for document in
                self.notifications.find({"_id": {"$in": notification_ids}}, {"_id": 1})}

    async def pending(self, notification_ids: list[str]) -> list[dict]:
        """Those of the notifications that are still to be sent."""
        return await self.notifications.find({"_id": {"$in": notification_ids}, "status": "pending"}).to_list()

    async def set_channel(self, notification_id: str, channel: str, template_id: str, consent_taken: bool) -> None:
        await self.notifications.update_one(
            {"_id": notification_id},
            {"$set": {"channel": channel, "template_id": template_id, "consent_taken": consent_taken}},
        )

    async def record(self, attempts: list[UpdateOne]) -> None:
        """What became of attempts to send (`finished`, `to_retry`), in one command."""
        if attempts:
            await self.notifications.bulk_write(attempts, ordered=False)

    async def due(self, now: datetime, limit: int) -> list[str]:
        cursor = self.notifications.find({"status": "pending", "retry_at": {"$lte": now}}, {"_id": 1}).limit(limit)
        return [document["_id"] async for document in cursor]

    async def postpone(self, notification_ids: list[str], retry_at: datetime) -> None:
        if notification_ids:
            await self.notifications.update_many({"_id": {"$in": notification_ids}}, {"$set": {"retry_at": retry_at}})

    async def add_consents(self, member_id: str, template_ids: list[str], at: datetime) -> None:
        counts = Counter(template_ids)
        operations = [
            UpdateOne(
                {"_id": consent_key(member_id, template_id)},
                {"$inc": {"unused": count}, "$set": {"member_id": member_id, "template_id": template_id,
                                                      "updated_at": at}},
                upsert=True,
            )
            for template_id, count in counts.items()
        ]
        for _ in range(3):
            if not operations:
                return
            try:
                await self.consents.bulk_write(operations, ordered=False)
                return
            except BulkWriteError as error:
                # Two first consents raced to insert: only the losers are tried again, and then increment
                # the winner's document; every other operation was applied.
                failed = {each["index"] for each in error.details.get("writeErrors", []) if each.get("code") == 11000}
                if len(failed) != len(error.details.get("writeErrors", [])):
                    raise
                operations = [operation for index, operation in enumerate(operations) if index in failed]

    async def take_consent(self, member_id: str, template_id: str, at: datetime) -> bool:
        """Use one unused consent; False when there is none."""
        result = await self.consents.update_one(
            {"_id": consent_key(member_id, template_id), "unused": {"$gt": 0}},
            {"$inc": {"unused": -1}, "$set": {"used_at": at}},
        )
        return result.modified_count == 1

    async def unused_consents(self, member_id: str, template_id: str) -> int:
        document = await self.consents.find_one({"_id": consent_key(member_id, template_id)})
        return int(document["unused"]) if document else 0


def finished(notification_id: str, status: str, at: datetime, channel: str | None = None,
             template_id: str | None = None, error: str | None = None) -> UpdateOne:
    """The notification is done: sent, refused, skipped or failed for good."""
    changes: dict = {"status": status, "finished_at": at}
    if channel is not None:
        changes.update(channel=channel, template_id=template_id)
    if error is not None:
        changes["error"] = error[:500]
    return UpdateOne({"_id": notification_id}, {"$set": changes, "$inc": {"attempts": 1}})


def to_retry(notification_id: str, error: str, counted: bool) -> UpdateOne:
    """An attempt that failed, left for the retry; `counted` towards giving up when WeChat answered with an error
    (not a rate limit, nor a failure of our own)."""
    update: dict = {"$set": {"error": error[:500]}}
    if counted:
        update["$inc"] = {"attempts": 1}
    return UpdateOne({"_id": notification_id, "status": "pending"}, update)
