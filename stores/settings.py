"""The merchant's settings on disk: `merchant_settings`: `{_id: name, value, updated_at, version}`, one
document per kind of settings, its value as the merchant API shows it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

MERCHANT_SETTINGS = "merchant_settings"


class SettingsStore:
    def __init__(self, db: AsyncDatabase):
        self.collection = db[MERCHANT_SETTINGS]

    async def value(self, name: str, session: AsyncClientSession | None = None) -> dict[str, Any] | None:
        """The stored value of the settings `name`; None until they are first set. `session`: within a transaction
        that may change them (`put` with the same session)."""
        document = await self.collection.find_one({"_id": name}, session=session)
        return document["value"] if document else None

    async def put(self, name: str, value: dict[str, Any], at: datetime,
                  session: AsyncClientSession | None = None) -> None:
        await self.collection.update_one(
            {"_id": name}, {"$set": {"value": value, "updated_at": at}, "$inc": {"version": 1}}, upsert=True,
            session=session,
        )
