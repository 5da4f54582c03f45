"""The promoter agreement on disk: its versions and who accepted which.

- `agreements`: `{_id: version (1, 2, ...), title, body, published_at}`. Inserted once, never updated: a
  version's `_id` is the one after the latest, so two merchants publishing at once cannot both take it.
- `agreement_acceptances`: `{_id: "<member id>:<version>", member_id, version, accepted_at}`: one per member and
  version, inserted in the transaction that raises the member's `agreement_version` (the newest version it
  accepted, `$max`), which is what the gates read.
"""

from __future__ import annotations

from datetime import datetime

from pymongo import DESCENDING, AsyncMongoClient, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from stores.members import MEMBERS
from stores.writes import Conflict, WriteSet, commit

AGREEMENTS = "agreements"
ACCEPTANCES = "agreement_acceptances"
ACCEPTED_VERSION = "agreement_version"  # on the member


class AgreementStore:
    def __init__(self, client: AsyncMongoClient, db: AsyncDatabase):
        self.client = client
        self.db = db
        self.versions = db[AGREEMENTS]
        self.acceptances = db[ACCEPTANCES]

    async def latest(self) -> dict | None:
        return await self.versions.find_one({}, sort=[("_id", DESCENDING)])

    async def add(self, fields: dict) -> dict | None:
        """Publish `fields` as the version after the latest; None when another was published meanwhile."""
        latest = await self.latest()
        document = {"_id": (latest["_id"] if latest else 0) + 1, **fields}
        try:
            await self.versions.insert_one(document)
        except DuplicateKeyError:
            return None
        return document

    async def page(self, limit: int, before: int | None) -> list[dict]:
        """Versions newest first, without their text, each with `accepted_count`."""
        query = {"_id": {"$lt": before}} if before is not None else {}
        versions = await self.versions.find(query, {"body": 0}).sort("_id", DESCENDING).limit(limit).to_list()
        for version in versions:
            version["accepted_count"] = await self.acceptances.count_documents({"version": version["_id"]})
        return versions

    async def accept(self, member_id: str, version: int, at: datetime) -> None:
        """Record the acceptance, once: a member accepting a version again changes nothing."""
        writes = WriteSet()
        writes.insert(ACCEPTANCES, [{"_id": f"{member_id}:{version}", "member_id": member_id, "version": version,
                                     "accepted_at": at}])
        writes.update(MEMBERS, UpdateOne({"_id": member_id}, {"$max": {ACCEPTED_VERSION: version}}))
        try:
            await commit(self.client, self.db, writes)
        except Conflict:
            pass  # accepted before: its acceptance stands

    async def acceptance(self, member_id: str, version: int) -> dict | None:
        return await self.acceptances.find_one({"_id": f"{member_id}:{version}"})

    async def acceptances_of(self, member_id: str) -> list[dict]:
        return await self.acceptances.find({"member_id": member_id}).sort("version", DESCENDING).to_list()
