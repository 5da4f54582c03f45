"""Per-promoter daily stats, kept by the worker, and the rankings read from them.

Each promoter has counters per China calendar day (`stores.stats`):

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
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from distribution import errors
from distribution.calendar import china_day
from stores.bind_log import BIND_LOG, BindLog
from stores.stats import NET_COMMISSION, PROMOTER_DAILY, StatsStore, daily_update
from stores.writes import Conflict, WriteSet, commit

BIND_LAG = timedelta(seconds=60)
SORTS = {"commission": NET_COMMISSION, "orders": "orders"}
MAX_RANGE_DAYS = 366


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
        self.store = StatsStore(db)
        self.bind_log = BindLog(db)
        # Called with the uplines that gained direct members (grades are evaluated there).
        self.on_new_direct_members = on_new_direct_members

    async def day(self, member_id: str, day: str) -> dict[str, int]:
        return await self.store.day(member_id, day)

    async def ranking(self, first_day: date, last_day: date, sort: str, limit: int) -> list[Ranked]:
        if sort not in SORTS:
            raise errors.Invalid(f"sort must be one of {', '.join(SORTS)}", field="sort")
        rows = await self.store.ranking(first_day.isoformat(), last_day.isoformat(), SORTS[sort], limit)
        return [Ranked(**row) for row in rows]

    async def count_binds(self, now: datetime | None = None, batch: int = 500) -> int:
        """Count new direct members from the bind log, up to `BIND_LAG` ago; returns the binds counted."""
        now = now or datetime.now(timezone.utc)
        upper = str(ObjectId.from_datetime(now - BIND_LAG))
        await self.store.start_cursor(BIND_LOG)
        counted = 0
        for _ in range(1000):
            last_id = await self.store.cursor(BIND_LOG)
            entries = await self.bind_log.bound_between(last_id, upper, batch)
            if not entries:
                break
            bound = [entry for entry in entries if entry.get("upline_id")]
            per_day = Counter((entry["upline_id"], china_day(entry["at"])) for entry in bound)
            writes = WriteSet()
            self.store.plan_cursor_move(BIND_LOG, last_id, entries[-1]["_id"], now, writes)
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
