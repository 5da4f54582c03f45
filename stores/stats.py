"""Per-promoter daily stats on disk, and the cursors of the logs counted into them.

- `promoter_daily`: `{_id: "<member_id>:<day>", member_id, day, orders, paid_fen, commission_fen,
  commission_reversed_fen, refunded_fen, new_direct_members}`; days are China's calendar days,
  `YYYY-MM-DD`. Counters change only by `$inc` (`daily_update`), in the transaction of what they count.
- `stats_cursors`: `{_id: the log counted, last_id, updated_at}`: how far a log has been counted. It
  moves in the same transaction as the counters (`plan_cursor_move`), so each entry counts once.
"""

from __future__ import annotations

from datetime import datetime

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from stores.writes import WriteSet

PROMOTER_DAILY = "promoter_daily"
STATS_CURSORS = "stats_cursors"
COUNTERS = ("orders", "paid_fen", "commission_fen", "commission_reversed_fen", "refunded_fen", "new_direct_members")
NET_COMMISSION = "net_commission_fen"  # commission_fen - commission_reversed_fen, computed by `ranking`


def daily_update(member_id: str, day: str, increments: dict[str, int]) -> UpdateOne:
    return UpdateOne(
        {"_id": f"{member_id}:{day}"},
        {"$inc": increments, "$setOnInsert": {"member_id": member_id, "day": day}},
        upsert=True,
    )


class StatsStore:
    def __init__(self, db: AsyncDatabase):
        self.daily = db[PROMOTER_DAILY]
        self.cursors = db[STATS_CURSORS]

    async def day(self, member_id: str, day: str) -> dict[str, int]:
        document = await self.daily.find_one({"_id": f"{member_id}:{day}"}) or {}
        return {name: int(document.get(name, 0)) for name in COUNTERS}

    async def ranking(self, first_day: str, last_day: str, sort_field: str, limit: int) -> list[dict]:
        """Each promoter's counters summed over the days, `{member_id, NET_COMMISSION, *COUNTERS}`, the
        `limit` highest by `sort_field` (a counter or NET_COMMISSION), ties by member id."""
        pipeline = [
            {"$match": {"day": {"$gte": first_day, "$lte": last_day}}},
            {"$group": {"_id": "$member_id", **{name: {"$sum": f"${name}"} for name in COUNTERS}}},
            {"$addFields": {NET_COMMISSION: {"$subtract": ["$commission_fen", "$commission_reversed_fen"]}}},
            {"$sort": {sort_field: -1, "_id": 1}},
            {"$limit": limit},
        ]
        rows = await (await self.daily.aggregate(pipeline)).to_list()
        return [{"member_id": row["_id"], **{name: int(row.get(name, 0)) for name in (*COUNTERS, NET_COMMISSION)}}
                for row in rows]

    async def start_cursor(self, log: str) -> None:
        """Make `log`'s cursor, before its first entry, unless it exists (so that a step can guard on it)."""
        await self.cursors.update_one({"_id": log}, {"$setOnInsert": {"last_id": ""}}, upsert=True)

    async def cursor(self, log: str) -> str:
        """The id of the last entry of `log` counted ("" before the first)."""
        return (await self.cursors.find_one({"_id": log}))["last_id"]

    @staticmethod
    def plan_cursor_move(log: str, last_id: str, new_last_id: str, at: datetime, writes: WriteSet) -> None:
        """Move the cursor past what this step counts, if it is still where the step read it."""
        writes.guard(STATS_CURSORS, {"_id": log, "last_id": last_id},
                     {"$set": {"last_id": new_last_id, "updated_at": at}})
