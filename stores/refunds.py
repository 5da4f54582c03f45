"""Refunds of mini-program orders through WeChat Pay, in MongoDB: the only module that knows their shape on disk.

`order_refunds`: `{_id: out_refund_no, order_no, out_trade_no, request_hash, lines: [{item_index, sku, qty,
refund_fen}], refund_fen, total_fen, reason, status: PROCESSING | SUCCESS | CLOSED | ABNORMAL | REFUSED,
refund_id, success_time, error, created_at, updated_at, check_at}`. `check_at` is when the worker next asks
WeChat Pay about a refund under way (its callback may be lost); null once the refund is final.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

ORDER_REFUNDS = "order_refunds"
UNDER_WAY = "PROCESSING"


class RefundStore:
    def __init__(self, db: AsyncDatabase):
        self.refunds = db[ORDER_REFUNDS]

    async def get(self, out_refund_no: str) -> dict | None:
        return await self.refunds.find_one({"_id": out_refund_no})

    async def of_order(self, order_no: str) -> list[dict]:
        return await self.refunds.find({"order_no": order_no}).sort("created_at", 1).to_list()

    async def move(self, out_refund_no: str, from_statuses: list[str], fields: dict[str, Any]) -> bool:
        """Change a refund still in one of `from_statuses`; False when it moved first."""
        result = await self.refunds.update_one({"_id": out_refund_no, "status": {"$in": from_statuses}},
                                               {"$set": fields})
        return result.modified_count == 1

    async def due(self, now: datetime, limit: int) -> list[dict]:
        """Refunds under way that nobody heard of by their `check_at`."""
        query = {"status": UNDER_WAY, "check_at": {"$lte": now}}
        return await self.refunds.find(query).sort("check_at", 1).limit(limit).to_list()
