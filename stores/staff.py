"""Staff accounts on disk: `staff {_id: username, password_hash, role, totp_secret_sealed?, totp_last_step?,
created_at, password_changed_at}`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

STAFF = "staff"


class StaffStore:
    def __init__(self, db: AsyncDatabase):
        self.staff = db[STAFF]

    async def get(self, username: str) -> dict[str, Any] | None:
        return await self.staff.find_one({"_id": username})

    async def insert(self, document: dict[str, Any]) -> bool:
        """False when the user name is taken."""
        try:
            await self.staff.insert_one(document)
        except DuplicateKeyError:
            return False
        return True

    async def set_fields(self, username: str, fields: dict[str, Any]) -> bool:
        return (await self.staff.update_one({"_id": username}, {"$set": fields})).matched_count == 1

    async def unset_fields(self, username: str, *names: str) -> None:
        await self.staff.update_one({"_id": username}, {"$unset": {name: "" for name in names}})

    async def use_totp_step(self, username: str, step: int) -> bool:
        """Record `step` as the last second-factor code used, if it is later than the last: a code works once."""
        result = await self.staff.update_one(
            {"_id": username, "$or": [{"totp_last_step": {"$lt": step}}, {"totp_last_step": {"$exists": False}}]},
            {"$set": {"totp_last_step": step}})
        return result.modified_count == 1

    async def all(self) -> list[dict[str, Any]]:
        return await self.staff.find({}, {"password_hash": 0}).sort("_id", 1).to_list()


def new_staff(username: str, password_hash: str, role: str, at: datetime) -> dict[str, Any]:
    return {"_id": username, "password_hash": password_hash, "role": role, "created_at": at,
            "password_changed_at": at}
