"""Withdrawals, and each promoter's running totals per day (for the daily caps).

- `withdrawals`: `{_id, member_id, amount_fen, fee_fen, net_fen, method, bank_sealed, real_name_sealed, status,
  day, created_at, updated_at, attempts, last_error, note, history: [{status, at, note}]}`; a WeChat-balance
  payout adds `payee: {app_id, openid}`, its transfer bill's `bill_state`, `transfer_bill_no`, `package_info`
  (while it waits for the promoter) and `confirm_by`, and `next_check_at` while the payout is under way (when
  the sweep queues it again); a bank payout marked paid adds the merchant's `reference`.
- `withdrawal_audit`: `{_id, withdrawal_id, member_id, action, at}`: each time the merchant read sealed bank
  details.
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
WITHDRAWAL_AUDIT = "withdrawal_audit"


def day_key(member_id: str, day: str) -> str:
    return f"{member_id}:{day}"


class WithdrawalStore:
    def __init__(self, db: AsyncDatabase):
        self.withdrawals = db[WITHDRAWALS]
        self.days = db[WITHDRAWAL_DAYS]
        self.audit = db[WITHDRAWAL_AUDIT]
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

    async def distinct_paying_buyers(self, member_id: str) -> list[str]:
        """Buyers whose paid orders earned this promoter a commission (from the orders' chain snapshots)."""
        return [buyer for buyer in await self.orders.distinct(
            "buyer_id", {"upline_chain": member_id, "paid_at": {"$ne": None}}) if buyer]

    async def paid_totals(self, member_ids: list[str]) -> dict[str, dict[str, int]]:
        """Member id -> `{count, amount_fen}` of their paid withdrawals, for those of `member_ids` paid anything."""
        pipeline = [{"$match": {"member_id": {"$in": member_ids}, "status": "paid"}},
                    {"$group": {"_id": "$member_id", "count": {"$sum": 1}, "amount_fen": {"$sum": "$amount_fen"}}}]
        return {row["_id"]: {"count": row["count"], "amount_fen": row["amount_fen"]}
                for row in await (await self.withdrawals.aggregate(pipeline)).to_list()}

    async def requested_on(self, member_ids: list[str], day: str) -> dict[str, int]:
        """Member id -> how many withdrawals they requested that day (not rejected, returned or cancelled)."""
        cursor = self.days.find({"_id": {"$in": [day_key(member_id, day) for member_id in member_ids]}})
        return {document["_id"].rsplit(":", 1)[0]: document["count"] async for document in cursor}

    async def record_attempt(self, withdrawal_id: str, status: str, attempts: int, error: str, at: datetime,
                             next_check_at: datetime) -> None:
        await self.withdrawals.update_one({"_id": withdrawal_id, "status": status},
                                          {"$set": {"attempts": attempts, "last_error": error, "updated_at": at,
                                                    "next_check_at": next_check_at}})

    async def update_payout(self, withdrawal_id: str, status: str, fields: dict[str, Any]) -> None:
        """What is known of the payout, without a move: guarded on the status it was learnt in."""
        await self.withdrawals.update_one({"_id": withdrawal_id, "status": status}, {"$set": fields})

    async def payouts_due(self, statuses: list[str], now: datetime, limit: int) -> list[str]:
        """WeChat-balance withdrawals in `statuses` whose payout was not looked at by `next_check_at`."""
        cursor = self.withdrawals.find({"status": {"$in": statuses}, "next_check_at": {"$lte": now}},
                                       {"_id": 1}).limit(limit)
        return [each["_id"] for each in await cursor.to_list()]

    async def postpone(self, withdrawal_ids: list[str], at: datetime) -> None:
        if withdrawal_ids:
            await self.withdrawals.update_many({"_id": {"$in": withdrawal_ids}}, {"$set": {"next_check_at": at}})

    async def record_reading(self, withdrawal: dict, action: str, at: datetime) -> None:
        await self.audit.insert_one({"withdrawal_id": withdrawal["_id"], "member_id": withdrawal["member_id"],
                                     "action": action, "at": at})

    async def readings(self, withdrawal_id: str) -> list[dict]:
        return await self.audit.find({"withdrawal_id": withdrawal_id}).sort("at", 1).to_list()

    async def count(self, status: str) -> int:
        """How many are in `status`: an indexed count, for the small sets (those awaiting review) a dashboard shows."""
        return await self.withdrawals.count_documents({"status": status})

    async def ids_of_member(self, member_id: str, status: str) -> list[str]:
        """All of the member's withdrawals in `status`: the few a member has under way at a time."""
        return [each["_id"] async for each in self.withdrawals.find({"member_id": member_id, "status": status},
                                                                    {"_id": 1})]

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
