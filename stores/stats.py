"""Per-promoter daily stats on disk, and the cursors of the logs counted into them.

- `promoter_daily`: `{_id: "<member_id>:<day>", member_id, day, orders, paid_fen, commission_fen,
  commission_reversed_fen, refunded_fen, new_direct_members, scans, visits, buyers, sales_fen}`; days are
  China's calendar days, `YYYY-MM-DD`. Counters change only by `$inc` (`daily_update`), in the transaction
  of what they count. The last four are the promoter's funnel (`distribution.stats`): its binds are
  `new_direct_members`.
- `stats_cursors`: `{_id: the log counted, last_id, updated_at}`: how far a log has been counted. It
  moves in the same transaction as the counters (`plan_cursor_move`), so each entry counts once.
- `ranking_snapshots`: `{_id: "<days>d:<sort field>", first_day, last_day, limit, rows, computed_at}`: a
  ranking the worker made of the last `days` days (`services.stats`), the `limit` highest rows as `rankings`
  answers them, member ids without nicknames. Each is replaced whole, so workers writing the same one at once
  leave one.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pymongo import ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase

from stores.writes import Increment, WriteSet

PROMOTER_DAILY = "promoter_daily"
STATS_CURSORS = "stats_cursors"
RANKING_SNAPSHOTS = "ranking_snapshots"
COUNTERS = ("orders", "paid_fen", "commission_fen", "commission_reversed_fen", "refunded_fen", "new_direct_members",
            "scans", "visits", "buyers", "sales_fen")
NET_COMMISSION = "net_commission_fen"  # commission_fen - commission_reversed_fen, computed by `ranking`


def daily_update(member_id: str, day: str, increments: dict[str, int]) -> Increment:
    return Increment(f"{member_id}:{day}", increments, {"member_id": member_id, "day": day})


def snapshot_id(days: int, sort_field: str) -> str:
    return f"{days}d:{sort_field}"


class StatsStore:
    def __init__(self, db: AsyncDatabase):
        self.daily = db[PROMOTER_DAILY]
        self.cursors = db[STATS_CURSORS]
        self.snapshots = db[RANKING_SNAPSHOTS]

    async def day(self, member_id: str, day: str) -> dict[str, int]:
        document = await self.daily.find_one({"_id": f"{member_id}:{day}"}) or {}
        return {name: int(document.get(name, 0)) for name in COUNTERS}

    async def days(self, member_id: str, first_day: str, last_day: str) -> dict[str, dict[str, int]]:
        """The promoter's counters of each day from `first_day` to `last_day` that has any, by day: one read
        through the `(member_id, day)` index, of at most those days."""
        found = self.daily.find({"member_id": member_id, "day": {"$gte": first_day, "$lte": last_day}})
        return {document["day"]: {name: int(document.get(name, 0)) for name in COUNTERS} async for document in found}

    async def rankings(self, first_day: str, last_day: str, sort_fields: Iterable[str],
                       limit: int) -> dict[str, list[dict]]:
        """Each promoter's counters summed over the days, `{member_id, NET_COMMISSION, *COUNTERS}`: for each of
        `sort_fields` (a counter or NET_COMMISSION), the `limit` highest by it, ties by member id. The days are
        read and added up once, however many rankings are asked for."""
        sort_fields = list(sort_fields)
        pipeline = [
            {"$match": {"day": {"$gte": first_day, "$lte": last_day}}},
            {"$group": {"_id": "$member_id", **{name: {"$sum": f"${name}"} for name in COUNTERS}}},
            {"$addFields": {NET_COMMISSION: {"$subtract": ["$commission_fen", "$commission_reversed_fen"]}}},
            {"$facet": {field: [{"$sort": {field: -1, "_id": 1}}, {"$limit": limit}] for field in sort_fields}},
        ]
        (ranked,) = await (await self.daily.aggregate(pipeline)).to_list()
        return {field: [{"member_id": row["_id"], **{name: int(row.get(name, 0))
                                                     for name in (*COUNTERS, NET_COMMISSION)}}
                        for row in ranked[field]] for field in sort_fields}

    async def save_rankings(self, days: int, first_day: str, last_day: str, rankings: dict[str, list[dict]],
                            limit: int, computed_at: datetime) -> None:
        """Keep `rankings` (as `rankings` answered them over the days, `limit` each) as the last `days` days'."""
        await self.snapshots.bulk_write([
            ReplaceOne({"_id": snapshot_id(days, field)},
                       {"first_day": first_day, "last_day": last_day, "limit": limit, "rows": rows,
                        "computed_at": computed_at}, upsert=True)
            for field, rows in rankings.items()])

    async def saved_rankings(self, days: int, first_day: str, last_day: str, sort_fields: Iterable[str], limit: int,
                             since: datetime, until: datetime) -> dict[str, dict]:
        """The kept rankings of the last `days` days by each of `sort_fields`, if they are of exactly these days,
        of at least `limit` rows and computed between `since` and `until`: sort field -> `{rows, computed_at}`.
        Read by id: a few small documents."""
        by_id = {snapshot_id(days, field): field for field in sort_fields}
        kept = self.snapshots.find({"_id": {"$in": list(by_id)}, "first_day": first_day, "last_day": last_day,
                                    "limit": {"$gte": limit}, "computed_at": {"$gte": since, "$lte": until}})
        return {by_id[snapshot["_id"]]: snapshot async for snapshot in kept}

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
