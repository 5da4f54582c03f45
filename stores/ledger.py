"""The ledger on disk: append-only entries, and each account's balances kept in step with them.

- `ledger_entries`: `{_id: idempotency key, account_id, bucket, amount_fen, kind, ref, at}`.
  The idempotency key is the `_id`, hence unique: a movement applied twice
  fails on a duplicate key and its transaction changes nothing.
- `accounts`: `{_id: member id, frozen_fen, available_fen, locked_fen, updated_at}`,
  changed only by `$inc` in the transaction that inserts the entries.
- `ledger_tallies`: `{_id, days: {China day: {ledger field: fen}}, uncounted, counted_at}`,
  one per transaction that inserts entries: what they add to the shop's
  totals, until the worker has added it (`services.stats`). One small insert
  per transaction, however many entries and orders it holds; marking each
  entry instead cost an index entry and an update per entry.

Writes go through `stores.writes.WriteSet.ledger`; this module knows the
documents' shape and reads them back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timezone

from bson import ObjectId
from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from distribution.ledger import Bucket, Entry, EntryKind
from stores.paging import newest_first

LEDGER_ENTRIES = "ledger_entries"
ACCOUNTS = "accounts"
LEDGER_TALLIES = "ledger_tallies"
# On a tally until the worker has added it to the shop's totals (a sparse index finds the few such tallies). Entries
# written before there were tallies carry it too, until counted.
UNCOUNTED = "uncounted"


def balance_field(bucket: Bucket) -> str:
    return f"{bucket.value}_fen"


def entry_document(entry: Entry, at: datetime) -> dict:
    return {
        "_id": entry.idempotency_key,
        "account_id": entry.account_id,
        "bucket": entry.bucket.value,
        "amount_fen": entry.amount_fen,
        "kind": entry.kind.value,
        "ref": entry.ref,
        "at": at,
        **({"statement_id": entry.statement_id} if entry.statement_id else {}),
    }


def tally_document(day_totals: Mapping[str, Mapping[str, int]]) -> dict:
    """A transaction's tally of `day_totals` ({China day: {ledger field: fen}}), to be counted."""
    return {"_id": ObjectId(), "days": {day: dict(totals) for day, totals in day_totals.items()}, UNCOUNTED: True}


def entry_from_document(document: Mapping) -> Entry:
    return Entry(
        account_id=document["account_id"],
        bucket=Bucket(document["bucket"]),
        amount_fen=document["amount_fen"],
        kind=EntryKind(document["kind"]),
        ref=document["ref"],
        idempotency_key=document["_id"],
        statement_id=document.get("statement_id"),
    )


def account_update(account_id: str, deltas: Mapping[Bucket, int], at: datetime | None) -> UpdateOne:
    """`$inc` the account's buckets by `deltas`, creating it with every bucket at zero on first use."""
    increments = {balance_field(bucket): amount for bucket, amount in deltas.items()}
    untouched = {balance_field(bucket): 0 for bucket in Bucket if balance_field(bucket) not in increments}
    return UpdateOne(
        {"_id": account_id},
        {
            "$inc": increments,
            "$set": {"updated_at": at or datetime.now(timezone.utc)},
            **({"$setOnInsert": untouched} if untouched else {}),
        },
        upsert=True,
    )


def balances_of(document: Mapping | None) -> dict[Bucket, int]:
    document = document or {}
    return {bucket: int(document.get(balance_field(bucket), 0)) for bucket in Bucket}


class LedgerStore:
    def __init__(self, db: AsyncDatabase):
        self.entries = db[LEDGER_ENTRIES]
        self.accounts = db[ACCOUNTS]
        self.tallies = db[LEDGER_TALLIES]

    async def balances(self, account_id: str) -> dict[Bucket, int]:
        return balances_of(await self.accounts.find_one({"_id": account_id}))

    async def balances_of_accounts(self, account_ids: list[str]) -> dict[str, dict[Bucket, int]]:
        """Each of `account_ids`' balances (all zero for an account without money yet), in one read."""
        found = {document["_id"]: document async for document in self.accounts.find({"_id": {"$in": account_ids}})}
        return {account_id: balances_of(found.get(account_id)) for account_id in account_ids}

    async def uncounted_tallies(self, limit: int) -> list[dict]:
        """Tallies not yet added to the shop's totals, up to `limit`."""
        return await self.tallies.find({UNCOUNTED: True}).limit(limit).to_list()

    async def uncounted_entries(self, limit: int) -> list[dict]:
        """Entries marked uncounted one by one, as they were before tallies, and not yet counted; up to `limit`."""
        return await self.entries.find({UNCOUNTED: True}, {"account_id": 0, "ref": 0}).limit(limit).to_list()

    async def all_entries(self) -> AsyncIterator[Entry]:
        async for document in self.entries.find({}, batch_size=5000):
            yield entry_from_document(document)

    async def all_accounts(self) -> AsyncIterator[tuple[str, dict[Bucket, int]]]:
        async for document in self.accounts.find({}, batch_size=5000):
            yield document["_id"], balances_of(document)

    async def page(self, account_id: str, limit: int, after: tuple[datetime, str] | None) -> list[dict]:
        """An account's entries newest first, `limit` after the cursor `(at, _id)`: one indexed range read."""
        return await newest_first(self.entries, {"account_id": account_id}, "at", limit, after)

    async def entries_of(self, account_id: str, limit: int = 200) -> list[Entry]:
        cursor = self.entries.find({"account_id": account_id}).sort("at", -1).limit(limit)
        return [entry_from_document(document) async for document in cursor]
