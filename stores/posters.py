"""Posters in MongoDB: drawn posters with their uploaded media, the codes they
carry, and the merchant's background pictures. The only module that knows
their shape on disk.

Bytes are stored in the documents themselves rather than in GridFS: a poster
is a 750x1334 JPEG of 100-300 KB and a prepared background well under 5 MB,
far below the 16 MB document limit, so one document is one round trip to
read or write, where GridFS costs a files document and chunk documents each
way.

- `poster_images`: one per member and template, `_id` `<member id>|<template
  id>`: the picture last drawn (`picture`, a digest of the template and
  version, code, nickname and avatar it shows), replaced when one of those
  changes. Holds the JPEG, when its code must be renewed, and the `media_id`
  WeChat gave its upload. Removed 40 days after it was drawn (a TTL index in
  stores.mongo); one asked for again is redrawn.
- `poster_codes`: the code of a member per slot (official-account temporary
  or permanent QR, mini-program code of a page and width), `_id`
  `<member id>|<slot>`.
- `poster_quota`: how many permanent QR codes were created (WeChat allows
  100,000 per account).
- `poster_backgrounds`: the merchant's uploaded backgrounds, prepared.
- `poster_deliveries`: a poster owed by customer-service message (the chat
  reply could not wait for it), one per member and request: `{_id, member_id,
  openid, template, request, status: pending|sending|done, outcome, due_at,
  created_at}`. `sending` is the claim of the one job run that sends it. One
  still pending after `due_at` had its job lost: a sweep queues it again.
  Removed 3 days after it was owed (a TTL index in stores.mongo).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

_WITHOUT_JPEG = {"jpeg": 0}
PERMANENT_QR_QUOTA = "permanent_oa_qr"
DELIVERIES = "poster_deliveries"


def image_id(member_id: str, template_id: str) -> str:
    return f"{member_id}|{template_id}"


class PosterStore:
    def __init__(self, db: AsyncDatabase):
        self.images = db["poster_images"]
        self.codes = db["poster_codes"]
        self.quota = db["poster_quota"]
        self.backgrounds = db["poster_backgrounds"]
        self.deliveries = db[DELIVERIES]

    # --- drawn posters ---------------------------------------------------------------

    async def current(self, member_id: str, template_id: str, template_key: str, slot: str, person: str,
                      now: datetime, with_jpeg: bool) -> dict | None:
        """The member's poster of the template, if it shows these and its code need not be renewed yet."""
        return await self.images.find_one(
            {"_id": image_id(member_id, template_id), "template_key": template_key, "slot": slot, "person": person,
             "code_renew_at": {"$gt": now}},
            None if with_jpeg else _WITHOUT_JPEG,
        )

    async def kept(self, member_id: str, template_id: str) -> dict | None:
        """The member's poster of the template as last drawn, whatever it shows."""
        return await self.images.find_one({"_id": image_id(member_id, template_id)})

    async def save(self, poster: dict) -> None:
        """Keep `poster` as its member's of its template, replacing the one before. The same picture again
        keeps its upload, and only its code's renewal time is updated, since a renewed code may say the same as
        the one before."""
        same = await self.images.update_one({"_id": poster["_id"], "picture": poster["picture"]},
                                            {"$set": {"code_renew_at": poster["code_renew_at"]}})
        if same.matched_count:
            return
        try:
            await self.images.replace_one({"_id": poster["_id"]}, poster, upsert=True)
        except DuplicateKeyError:  # a concurrent first drawing inserted it: the newer picture wins
            await self.images.replace_one({"_id": poster["_id"]}, poster)

    async def set_media(self, poster_id: str, picture: str, media_id: str, uploaded_at: datetime) -> None:
        """Record the upload of `picture`, unless the poster has been replaced by another picture since."""
        await self.images.update_one({"_id": poster_id, "picture": picture},
                                     {"$set": {"media_id": media_id, "media_at": uploaded_at}})

    async def forget_media(self, media_id: str) -> None:
        """WeChat no longer knows `media_id`: the next request uploads again."""
        await self.images.update_many({"media_id": media_id}, {"$unset": {"media_id": "", "media_at": ""}})

    # --- codes -----------------------------------------------------------------------

    async def code(self, member_id: str, slot: str) -> dict | None:
        return await self.codes.find_one({"_id": f"{member_id}|{slot}"})

    async def save_code(self, member_id: str, slot: str, fields: dict[str, Any]) -> None:
        await self.codes.replace_one({"_id": f"{member_id}|{slot}"},
                                     {"member_id": member_id, "slot": slot, **fields}, upsert=True)

    async def claim_permanent_qr(self, limit: int) -> bool:
        """Count one more permanent QR code, unless `limit` are already counted."""
        try:
            await self.quota.update_one({"_id": PERMANENT_QR_QUOTA}, {"$setOnInsert": {"issued": 0}}, upsert=True)
        except DuplicateKeyError:
            pass  # created by a concurrent claim
        claimed = await self.quota.update_one({"_id": PERMANENT_QR_QUOTA, "issued": {"$lt": limit}},
                                              {"$inc": {"issued": 1}})
        return claimed.modified_count == 1

    async def unclaim_permanent_qr(self) -> None:
        await self.quota.update_one({"_id": PERMANENT_QR_QUOTA, "issued": {"$gt": 0}}, {"$inc": {"issued": -1}})

    # --- deliveries by customer-service message ----------------------------------------

    async def owe(self, delivery: dict) -> None:
        """Idempotent: a delivery of the same `_id` is the same one."""
        try:
            await self.deliveries.insert_one(delivery)
        except DuplicateKeyError:
            pass

    async def claim_delivery(self, delivery_id: str, at: datetime) -> bool:
        """Whether this run is the one to send it: False when another run sends or sent it."""
        claimed = await self.deliveries.update_one({"_id": delivery_id, "status": "pending"},
                                                   {"$set": {"status": "sending", "claimed_at": at}})
        return claimed.modified_count == 1

    async def release_delivery(self, delivery_id: str) -> None:
        await self.deliveries.update_one({"_id": delivery_id, "status": "sending"}, {"$set": {"status": "pending"}})

    async def finish_delivery(self, delivery_id: str, outcome: str, at: datetime) -> None:
        await self.deliveries.update_one({"_id": delivery_id},
                                         {"$set": {"status": "done", "outcome": outcome, "done_at": at}})

    async def due_deliveries(self, now: datetime, owed_since: datetime, limit: int) -> list[dict]:
        """Pending deliveries due by `now` and owed since `owed_since`."""
        return await self.deliveries.find({"status": "pending", "due_at": {"$lt": now},
                                           "created_at": {"$gte": owed_since}}).limit(limit).to_list()

    async def postpone_deliveries(self, delivery_ids: list[str], until: datetime) -> None:
        await self.deliveries.update_many({"_id": {"$in": delivery_ids}}, {"$set": {"due_at": until}})

    # --- backgrounds -----------------------------------------------------------------

    async def add_background(self, fields: dict[str, Any]) -> str:
        background_id = str(ObjectId())
        await self.backgrounds.insert_one({"_id": background_id, **fields})
        return background_id

    async def background(self, background_id: str) -> dict | None:
        return await self.backgrounds.find_one({"_id": background_id})

    async def backgrounds_page(self, before_id: str | None, limit: int) -> list[dict]:
        """Newest first (ids grow with time), older than `before_id` when given; without the pictures, so a
        listing reads no megabytes."""
        query = {"_id": {"$lt": before_id}} if before_id else {}
        return await self.backgrounds.find(query, {"data": 0}).sort("_id", DESCENDING).limit(limit).to_list()

    async def delete_background(self, background_id: str) -> bool:
        return (await self.backgrounds.delete_one({"_id": background_id})).deleted_count == 1
