"""Per-promoter daily stats, kept by the worker, and the rankings read from them.

`promoter_daily`: `{_id: "<member_id>:<day>", member_id, day, orders, paid_fen, commission_fen,
commission_reversed_fen, refunded_fen, new_direct_members}`. Days are China's calendar days
(UTC+8), written `YYYY-MM-DD`.

- A promoter's `orders`, `paid_fen` and `commission_fen` grow when an order's
  commissions are posted to them (on `paid`, or on `confirmed` when that is
  the trigger), in the same transaction as the commissions: the day is the
  event's. `paid_fen` is the order's paid total.
- A refund adds to `refunded_fen` and `commission_reversed_fen` on the
  refund's day; the ranking by commission uses commission minus reversed.
- `new_direct_members` counts binds from the relations' bind log
  (`count_binds`, a periodic task): each bound entry once, exactly, through a
  cursor moved in the same transaction as the counters (read through the
  bind log's `(result, _id)` index). The cursor stays `BIND_LAG` behind the
  clock, because a bind log id is made before its transaction commits.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Awaitable, Callable

from bson import ObjectId
from pymongo import AsyncMongoClient, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from stores.writes import Conflict, WriteSet, commit

PROMOTER_DAILY = "promoter_daily"
STATS_CURSORS = "stats_cursors"
BIND_LOG = "bind_log"
CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")
BIND_LAG = timedelta(seconds=60)
COUNTERS = ("orders", "paid_fen", "commission_fen", "commission_reversed_fen", "refunded_fen", "new_direct_members")
SORTS = {"commission": "net_commission_fen", "orders": "orders"}
MAX_RANGE_DAYS = 366


def day_of(at: datetime) -> str:
    return at.astimezone(CHINA).date().isoformat()


def daily_update(member_id: str, day: str, increments: dict[str, int]) -> UpdateOne:
    return UpdateOne(
        {"_id": f"{member_id}:{day}"},
        {"$inc": increments, "$setOnInsert": {"member_id": member_id, "day": day}},
        upsert=True,
    )


@dataclass(frozen=True)
class Ranked:
    member_id: str
    orders: int
    paid_fen: int
    commission_fen: int
    commission_reversed_fen: int
    net_commission_fen: int
    refunded_fen: int
    new_direct_members: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class StatsService:
    def __init__(self, client: AsyncMongoClient, db: AsyncDatabase,
                 on_new_direct_members: Callable[[list[str], datetime], Awaitable[Any]] | None = None):
        self.client = client
        self.db = db
        self.daily = db[PROMOTER_DAILY]
        self.cursors = db[STATS_CURSORS]
        self.bind_log = db[BIND_LOG]
        # Called with the uplines that gained direct members (grades are evaluated there).
        self.on_new_direct_members = on_new_direct_members

    async def day(self, member_id: str, day: str) -> dict[str, int]:
        document = await self.daily.find_one({"_id": f"{member_id}:{day}"}) or {}
        return {name: int(document.get(name, 0)) for name in COUNTERS}

    async def ranking(self, first_day: date, last_day: date, sort: str, limit: int) -> list[Ranked]:
        if sort not in SORTS:
            raise ValueError(f"sort must be one of {', '.join(SORTS)}")
        pipeline = [
            {"$match": {"day": {"$gte": first_day.isoformat(), "$lte": last_day.isoformat()}}},
            {"$group": {"_id": "$member_id", **{name: {"$sum": f"${name}"} for name in COUNTERS}}},
            {"$addFields": {"net_commission_fen": {"$subtract": ["$commission_fen", "$commission_reversed_fen"]}}},
            {"$sort": {SORTS[sort]: -1, "_id": 1}},
            {"$limit": limit},
        ]
        rows = await (await self.daily.aggregate(pipeline)).to_list()
        return [
            Ranked(
                member_id=row["_id"],
                net_commission_fen=int(row["net_commission_fen"]),
                **{name: int(row.get(name, 0)) for name in COUNTERS},
            )
            for row in rows
        ]

    async def count_binds(self, now: datetime | None = None, batch: int = 500) -> int:
        """Count new direct members from the bind log, up to `BIND_LAG` ago; returns the binds counted."""
        now = now or datetime.now(timezone.utc)
        upper = str(ObjectId.from_datetime(now - BIND_LAG))
        await self.cursors.update_one({"_id": BIND_LOG}, {"$setOnInsert": {"last_id": ""}}, upsert=True)
        counted = 0
        for _ in range(1000):
            cursor = await self.cursors.find_one({"_id": BIND_LOG})
            last_id = cursor["last_id"]
            entries = await self.bind_log.find(
                {"result": "bound", "_id": {"$gt": last_id, "$lt": upper}}, {"upline_id": 1, "at": 1}
            ).sort("_id", 1).limit(batch).to_list()
            if not entries:
                break
            bound = [entry for entry in entries if entry.get("upline_id")]
            per_day = Counter((entry["upline_id"], day_of(entry["at"])) for entry in bound)
            writes = WriteSet()
            writes.guard(STATS_CURSORS, {"_id": BIND_LOG, "last_id": last_id},
                         {"$set": {"last_id": entries[-1]["_id"], "updated_at": now}})
            for (upline_id, day), count in per_day.items():
                writes.update(PROMOTER_DAILY, daily_update(upline_id, day, {"new_direct_members": count}))
            try:
                await commit(self.client, self.db, writes)
            except Conflict:
                continue  # another worker moved the cursor: read it again
            counted += len(bound)
            if bound and self.on_new_direct_members:
                await self.on_new_direct_members(sorted({entry["upline_id"] for entry in bound}), now)
            if len(entries) < batch:
                break
        return counted
