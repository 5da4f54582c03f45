"""What the finance report and the tax figures read: a time window's commissions, withdrawals and ledger
entries (each through an index on its time), and promoters' balances at a moment.

- `tax_profiles`: `{_id: member id, kind: person | company, tax_id_sealed, tax_id_masked, updated_at}`.

Every read here is by an indexed time range (`stores.mongo`): `settled_at` and `reversals.at` of
commissions, `(status, history.at)` of withdrawals, `at` of ledger entries.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

from pymongo.asynchronous.database import AsyncDatabase

from distribution.ledger import Bucket, Entry
from stores.ledger import ACCOUNTS, LEDGER_ENTRIES, balance_field, entry_from_document
from stores.orders import COMMISSIONS
from stores.withdrawals import WITHDRAWALS

TAX_PROFILES = "tax_profiles"
BATCH = 1000
COMMISSION_FIELDS = {"beneficiary_id": 1, "settled_at": 1, "settled_fen": 1, "reversals": 1}
WITHDRAWAL_FIELDS = {"member_id": 1, "status": 1, "method": 1, "amount_fen": 1, "fee_fen": 1, "net_fen": 1,
                     "history": 1, "transfer_bill_no": 1, "bill_state": 1}


def entered_at(withdrawal: dict, status: str) -> datetime:
    """When the withdrawal (read with its history) last entered `status`."""
    return next(step["at"] for step in reversed(withdrawal["history"]) if step["status"] == status)


class FinanceStore:
    def __init__(self, db: AsyncDatabase):
        self.commissions = db[COMMISSIONS]
        self.withdrawals = db[WITHDRAWALS]
        self.entries = db[LEDGER_ENTRIES]
        self.accounts = db[ACCOUNTS]
        self.tax_profiles = db[TAX_PROFILES]

    async def settled_between(self, start: datetime, end: datetime) -> AsyncIterator[dict]:
        async for document in self.commissions.find({"settled_at": {"$gte": start, "$lt": end}}, COMMISSION_FIELDS,
                                                     batch_size=BATCH):
            yield document

    async def reversed_between(self, start: datetime, end: datetime) -> AsyncIterator[dict]:
        """Commissions with a reversal (a refund's share) recorded in the window; their other reversals too."""
        async for document in self.commissions.find({"reversals.at": {"$gte": start, "$lt": end}}, COMMISSION_FIELDS,
                                                     batch_size=BATCH):
            yield document

    async def withdrawals_moved_between(self, statuses: list[str], start: datetime,
                                        end: datetime) -> AsyncIterator[dict]:
        """Withdrawals now in one of `statuses` with a step of their history in the window (any step: the
        caller picks the one it wants)."""
        query = {"status": {"$in": statuses}, "history.at": {"$gte": start, "$lt": end}}
        async for document in self.withdrawals.find(query, WITHDRAWAL_FIELDS, batch_size=BATCH):
            yield document

    async def methods(self, withdrawal_ids: list[str]) -> dict[str, str]:
        if not withdrawal_ids:
            return {}
        cursor = self.withdrawals.find({"_id": {"$in": withdrawal_ids}}, {"method": 1})
        return {document["_id"]: document["method"] async for document in cursor}

    async def entries_between(self, start: datetime, end: datetime) -> AsyncIterator[Entry]:
        async for document in self.entries.find({"at": {"$gte": start, "$lt": end}}, batch_size=BATCH):
            yield entry_from_document(document)

    async def available_at(self, account_ids: list[str], moment: datetime) -> dict[str, tuple[int, int]]:
        """Each account's `available` at `moment`, two ways: (its entries before `moment` added up, its stored
        balance less its entries from `moment` on). Two aggregations and one read, whatever the number."""
        if not account_ids:
            return {}
        bucket = Bucket.AVAILABLE.value
        before = await self._sums({"account_id": {"$in": account_ids}, "bucket": bucket, "at": {"$lt": moment}})
        since = await self._sums({"account_id": {"$in": account_ids}, "bucket": bucket, "at": {"$gte": moment}})
        field = balance_field(Bucket.AVAILABLE)
        stored = {document["_id"]: int(document.get(field, 0))
                  async for document in self.accounts.find({"_id": {"$in": account_ids}}, {field: 1})}
        return {account_id: (before.get(account_id, 0), stored.get(account_id, 0) - since.get(account_id, 0))
                for account_id in account_ids}

    async def _sums(self, match: dict) -> dict[str, int]:
        pipeline = [{"$match": match}, {"$group": {"_id": "$account_id", "fen": {"$sum": "$amount_fen"}}}]
        return {row["_id"]: row["fen"] for row in await (await self.entries.aggregate(pipeline)).to_list()}

    # --- tax profiles ----------------------------------------------------------------------------

    async def tax_profiles_of(self, member_ids: list[str]) -> dict[str, dict]:
        if not member_ids:
            return {}
        return {document["_id"]: document async for document in self.tax_profiles.find({"_id": {"$in": member_ids}})}

    async def put_tax_profile(self, member_id: str, fields: dict) -> dict | None:
        """Replace the member's profile; the one it replaced (None the first time)."""
        before = await self.tax_profiles.find_one({"_id": member_id})
        await self.tax_profiles.replace_one({"_id": member_id}, {"_id": member_id, **fields}, upsert=True)
        return before
