"""Withdrawals, and each promoter's running totals per day (for the daily caps).

- `withdrawals`: `{_id, member_id, amount_fen, fee_fen, net_fen, method, bank_sealed, status, day,
  created_at, updated_at, attempts, last_error, batch_id, note, history: [{status, at, note}]}`.
- `withdrawal_days`: `{_id: "<member id>:<day>", count, amount_fen}` of the withdrawals requested that
  (China) day and not rejected, returned or cancelled. A request is guarded on it, so concurrent
  requests can never pass a cap together.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from stores.orders import ORDERS

WITHDRAWALS = "withdrawals"
WITHDRAWAL_DAYS = "withdrawal_days"
def day_key(member_id: str, day: str) -> str:
    return f"{member_id}:{day}"


class WithdrawalStore:
    def __init__(self, db: AsyncDatabase):
        self.withdrawals = db[WITHDRAWALS]
        self.days = db[WITHDRAWAL_DAYS]
        self.orders = db[ORDERS]

    async def get(self, withdrawal_id: str) -> dict | None:
        return await self.withdrawals.find_one({"_id": withdrawal_id})

    async def day_totals(self, member_id: str, day: str) -> dict:
        """Made on first use (idempotently), so that a request can guard on it."""
        key = day_key(member_id, day)
        await self.days.update_one({"_id": key}, {"$setOnInsert": {"count": 0, "amount_fen": 0}}, upsert=True)
        return await self.days.find_one({"_id": key})

    async def has_been_paid(self, member_id: str) -> bool:
        return await self.withdrawals.count_documents({"member_id": member_id, "status": "paid"}, limit=1) > 0

    async def distinct_paying_buyers(self, member_id: str) -> int:
        """Buyers whose paid orders earned this promoter a commission (from the orders' chain snapshots)."""
        return len(await self.orders.distinct("buyer_id", {"upline_chain": member_id, "paid_at": {"$ne": None}}))

    async def record_attempt(self, withdrawal_id: str, attempts: int, error: str, at: datetime) -> None:
        await self.withdrawals.update_one({"_id": withdrawal_id, "status": "approved"},
                                          {"$set": {"attempts": attempts, "last_error": error, "updated_at": at}})

    async def page(self, member_id: str | None, status: str | None, limit: int, before_id: str | None) -> list[dict]:
        """Newest first (ids are ObjectIds, so in time order), of one member and/or in one status."""
        query: dict[str, Any] = {}
        if member_id:
            query["member_id"] = member_id
        if status:
            query["status"] = status
        if before_id:
            query["_id"] = {"$lt": before_id}
        return await self.withdrawals.find(query).sort("_id", -1).limit(limit).to_list()
