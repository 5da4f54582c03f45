"""The shop's daily totals, shop-wide and per poster template, and the funnel's once-only marks, on disk.

- `daily_totals`: `{_id: "shop:<day>:<shard>" | "template:<template id>:<day>:<shard>", scope: "shop" |
  "template", key: the template id (templates only), day, <the funnel's counters>, new_promoters (shop only),
  <the ledger's totals by kind and bucket> (shop only)}`, and the ledger's totals of all time, `{_id:
  "ledger:<shard>", scope: "ledger", <the same totals>}`: the shop's balances now, so that a range ending today
  reads none of the days before it. The counters are named by `distribution.stats`, days are China's calendar
  days. They change only by `$inc` with upsert, in the transaction of what they count (scans and visits, which
  write nothing else, on their own; the ledger's totals in the worker's transaction that unmarks the tallies it
  counts, `services.stats.StatsService.count_totals`). A count is spread over `SHARDS` documents, chosen by a
  hash of what is counted, so that concurrent transactions (every paid order) do not all write one document;
  reads add the shards up. A promoter's own counters are in `promoter_daily` (`stores.stats`).
- `funnel_firsts`: `{_id: "buyer:<member id>" | "promoter:<member id>", at}`: that a buyer's first paid order,
  or a promoter's first bound member, was counted. The mark is inserted in the transaction that counts it, so
  a second attempt fails on its key and changes nothing.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from distribution.stats import FUNNEL_COUNTERS, LEDGER_FIELDS, SHOP_COUNTERS
from stores.ledger import UNCOUNTED
from stores.writes import Increment

DAILY_TOTALS = "daily_totals"
FIRSTS = "funnel_firsts"
FUNNEL_EVENTS = "funnel_events"
SHARDS = 4
SHOP = "shop"
TEMPLATE = "template"
LEDGER = "ledger"
FIRST_PAID_ORDER = "buyer"
FIRST_BOUND_MEMBER = "promoter"


def _shard(counted: str) -> int:
    return zlib.crc32(counted.encode()) % SHARDS


def shop_update(day: str, counted: str, increments: Mapping[str, int]) -> Increment:
    """Add to the shop's counters of `day`; `counted` (an order number, a member id...) picks the shard."""
    return Increment(f"{SHOP}:{day}:{_shard(counted)}", increments, {"scope": SHOP, "day": day})


def ledger_updates(day: str, counted: str, totals: Mapping[str, int]) -> list[Increment]:
    """Add the ledger's movements (`distribution.stats.ledger_field`) to the shop's totals of `day` and of all
    time."""
    return [shop_update(day, counted, totals), Increment(f"{LEDGER}:{_shard(counted)}", totals, {"scope": LEDGER})]


def template_update(template_id: str, day: str, counted: str, increments: Mapping[str, int]) -> Increment:
    return Increment(f"{TEMPLATE}:{template_id}:{day}:{_shard(counted)}", increments,
                     {"scope": TEMPLATE, "key": template_id, "day": day})


def first_mark(kind: str, member_id: str, at: datetime) -> dict:
    return {"_id": f"{kind}:{member_id}", "at": at}


def _sums(names: Iterable[str]) -> dict[str, dict]:
    return {name: {"$sum": f"${name}"} for name in names}


class FunnelStore:
    def __init__(self, db: AsyncDatabase):
        self.totals = db[DAILY_TOTALS]
        self.firsts = db[FIRSTS]
        self.events = db[FUNNEL_EVENTS]

    async def record(self, promoter_id: str, template_id: str | None, day: str, counter: str, at: datetime) -> None:
        """A scan or a visit of `day`, appended uncounted: the worker adds it to the promoter's, the template's
        and the shop's counters (`services.stats.StatsService.count_totals`). An insert never conflicts, so many
        scans of one code at once never wait on each other, as increments of one counter would."""
        await self.events.insert_one({"promoter_id": promoter_id, "template_id": template_id, "day": day,
                                      "counter": counter, "at": at, UNCOUNTED: True})

    async def uncounted_events(self, limit: int) -> list[dict]:
        return await self.events.find({UNCOUNTED: True}).limit(limit).to_list()

    async def marked(self, kind: str, member_ids: Iterable[str]) -> set[str]:
        """Those of `member_ids` whose first of `kind` was counted."""
        prefix = f"{kind}:"
        found = self.firsts.find({"_id": {"$in": [prefix + member_id for member_id in member_ids]}}, {"_id": 1})
        return {document["_id"].removeprefix(prefix) async for document in found}

    async def shop_days(self, first_day: str, last_day: str) -> dict[str, dict[str, int]]:
        """The shop's counters and ledger totals of each day of the range that has any: {day: totals}."""
        return await self._added({"scope": SHOP, "day": {"$gte": first_day, "$lte": last_day}}, "$day",
                                 (*SHOP_COUNTERS, *LEDGER_FIELDS))

    async def ledger_at_end_of(self, last_day: str) -> dict[str, int]:
        """The ledger's totals up to the end of `last_day`: those of all time less those of the days after it
        (none, for a range that ends today)."""
        all_time = await self._added({"scope": LEDGER}, None, LEDGER_FIELDS)
        later = await self._added({"scope": SHOP, "day": {"$gt": last_day}}, None, LEDGER_FIELDS)
        return {name: all_time.get(None, {}).get(name, 0) - later.get(None, {}).get(name, 0) for name in LEDGER_FIELDS}

    async def templates(self, first_day: str, last_day: str) -> dict[str, dict[str, int]]:
        """Each template's funnel counters over the days: {template id: counters}."""
        return await self._added({"scope": TEMPLATE, "day": {"$gte": first_day, "$lte": last_day}}, "$key",
                                 FUNNEL_COUNTERS)

    async def _added(self, match: dict, by: str | None, names: Iterable[str]) -> dict[Any, dict[str, int]]:
        """The `names` of the documents `match` finds, added up per value of `by` (None: all together)."""
        pipeline = [{"$match": match}, {"$group": {"_id": by, **_sums(names)}}]
        rows = await (await self.totals.aggregate(pipeline)).to_list()
        return {row.pop("_id"): {name: int(value) for name, value in row.items()} for row in rows}
