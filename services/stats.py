"""Per-promoter daily stats, kept by the worker, and the rankings read from them.

Each promoter has counters per China calendar day (`stores.stats`), beside
the shop's and the poster templates' (`stores.funnel`):

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
  clock, because a bind log id is made before its transaction commits. The
  same step counts the binds of the shop and of the poster template that
  brought each member, and the promoters whose first member it is.
- The funnel's `buyers` and `sales_fen` are counted in the paid order's
  transaction (`services.funnel`).
- The shop's money (`stores.funnel` ledger totals, per day and of all time),
  and the scans and visits, are added up from what was recorded marked
  uncounted — the ledger's tallies (one per transaction that moves money,
  `stores.ledger`), funnel events — by `count_totals`, a periodic task, each
  unmarked in the transaction that adds it, so each counts once; and no
  request, nor any transaction that moves a member's money, writes a
  document that every other one writes too.

The counts write the shop's day totals, as the workers' order batches do, so
they commit in the batches' line (`stores.commit_turns`).

Ranking adds up every promoter's days in the range: seconds over a month of
thousands of active promoters. So the worker ranks the ranges the dashboard
offers (`RANKED_RANGES` days ending today) every minute (`save_rankings`)
and keeps the top `MAX_RANKED` by each sort; a ranking of exactly such a
range is read from what it kept while that is `FRESH_RANKING`, and any other
is ranked live. Both are the store's one `rankings`, and both read nicknames
as they are now.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Awaitable, Callable

from bson import ObjectId
from pymongo.asynchronous.database import AsyncDatabase

from distribution import errors
from distribution.calendar import CHINA, china_day
from distribution.ledger import Bucket, EntryKind
from distribution.stats import add_movement
from stores.bind_log import BIND_LOG, BindLog
from stores.commit_turns import CommitTurns
from stores.funnel import (DAILY_TOTALS, FIRST_BOUND_MEMBER, FIRSTS, FUNNEL_EVENTS, FunnelStore, first_mark,
                           ledger_updates, shop_update, template_update)
from stores.ledger import LEDGER_ENTRIES, LEDGER_TALLIES, UNCOUNTED, LedgerStore
from stores.members import MemberStore
from stores.stats import NET_COMMISSION, PROMOTER_DAILY, StatsStore, daily_update
from stores.writes import Conflict, WriteSet

BIND_LAG = timedelta(seconds=60)
SORTS = {"commission": NET_COMMISSION, "orders": "orders", "sales": "sales_fen"}
RANKED_RANGES = (1, 7, 30)  # days up to today: the dashboard's quick ranges, the API's default among them
MAX_RANKED = 100  # the longest ranking anyone asks for
FRESH_RANKING = timedelta(minutes=5)  # how old a kept ranking may be: several of the worker's minutes


@dataclass(frozen=True)
class Ranked:
    member_id: str
    nickname: str | None
    orders: int
    paid_fen: int
    commission_fen: int
    commission_reversed_fen: int
    net_commission_fen: int
    refunded_fen: int
    new_direct_members: int
    scans: int
    visits: int
    buyers: int
    sales_fen: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Ranking:
    rows: list[Ranked]
    computed_at: datetime  # when the days were added up: now, or when the worker ranked them


class StatsService:
    def __init__(self, db: AsyncDatabase, commit_turns: CommitTurns,
                 on_new_direct_members: Callable[[list[str], datetime], Awaitable[Any]] | None = None):
        self.db = db
        self.commit_turns = commit_turns
        self.store = StatsStore(db)
        self.bind_log = BindLog(db)
        self.funnel = FunnelStore(db)
        self.members = MemberStore(db)
        self.ledger = LedgerStore(db)
        # Called with the uplines that gained direct members (grades are evaluated there).
        self.on_new_direct_members = on_new_direct_members

    async def day(self, member_id: str, day: str) -> dict[str, int]:
        return await self.store.day(member_id, day)

    async def ranking(self, first_day: date, last_day: date, sort: str, limit: int) -> Ranking:
        return (await self.rankings(first_day, last_day, [sort], limit))[sort]

    async def rankings(self, first_day: date, last_day: date, sorts: Sequence[str], limit: int,
                       now: datetime | None = None) -> dict[str, Ranking]:
        """The promoters ranked by each of `sorts` over the days, with their nicknames: as the worker last ranked
        them if it did within `FRESH_RANKING` of `now`, else from the days, read once."""
        for sort in sorts:
            if sort not in SORTS:
                raise errors.Invalid(f"sort must be one of {', '.join(SORTS)}", field="sort")
        now = now or datetime.now(timezone.utc)
        first, last, fields = first_day.isoformat(), last_day.isoformat(), {SORTS[sort] for sort in sorts}
        days = (last_day - first_day).days + 1
        saved = (await self.store.saved_rankings(days, first, last, fields, limit, now - FRESH_RANKING, now)
                 if days in RANKED_RANGES else {})
        if len(saved) == len(fields):
            rows = {field: saved[field]["rows"][:limit] for field in fields}
            computed_at = {field: saved[field]["computed_at"] for field in fields}
        else:
            rows = await self.store.rankings(first, last, fields, limit)
            computed_at = dict.fromkeys(fields, now)
        members = await self.members.several(sorted({row["member_id"] for ranked in rows.values() for row in ranked}))
        return {sort: Ranking([Ranked(**row, nickname=members.get(row["member_id"], {}).get("nickname"))
                               for row in rows[SORTS[sort]]], computed_at[SORTS[sort]]) for sort in sorts}

    async def save_rankings(self, now: datetime | None = None) -> int:
        """Rank the promoters over each of `RANKED_RANGES` ending today, by every sort, and keep the rankings for
        `rankings` to read; returns how many were kept. Workers doing it at once each replace them whole."""
        now = now or datetime.now(timezone.utc)
        today = now.astimezone(CHINA).date()
        for days in RANKED_RANGES:
            first, last = (today - timedelta(days=days - 1)).isoformat(), today.isoformat()
            ranked = await self.store.rankings(first, last, SORTS.values(), MAX_RANKED)
            await self.store.save_rankings(days, first, last, ranked, MAX_RANKED, now)
        return len(RANKED_RANGES) * len(SORTS)

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
            await self._plan_shop_binds(bound, writes)
            try:
                await self.commit_turns.commit(self.db, writes)
            except Conflict:
                continue  # another worker moved the cursor: read it again
            counted += len(bound)
            if bound and self.on_new_direct_members:
                await self.on_new_direct_members(sorted({entry["upline_id"] for entry in bound}), now)
            if len(entries) < batch:
                break
        return counted

    async def count_totals(self, batch: int = 500) -> int:
        """Add what is recorded uncounted — the ledger's tallies (and any entry marked before there were tallies),
        scans and visits — to the daily and shop-wide totals; returns how many were counted."""
        return (await self._count_uncounted(self.ledger.uncounted_tallies, LEDGER_TALLIES, _plan_tallies, batch)
                + await self._count_uncounted(self.ledger.uncounted_entries, LEDGER_ENTRIES, _plan_entries, batch)
                + await self._count_uncounted(self.funnel.uncounted_events, FUNNEL_EVENTS, _plan_funnel_events, batch))

    async def _count_uncounted(self, read: Callable[[int], Awaitable[list[dict]]], collection: str,
                               plan: Callable[[list[dict], WriteSet], None], batch: int) -> int:
        """Each document `read` finds is unmarked in the transaction that adds it up (`plan`): it counts once."""
        counted = 0
        for _ in range(1000):
            documents = await read(batch)
            if not documents:
                break
            writes = WriteSet()
            now = datetime.now(timezone.utc)
            for document in documents:
                writes.guard(collection, {"_id": document["_id"], UNCOUNTED: True},
                             {"$unset": {UNCOUNTED: ""}, "$set": {"counted_at": now}})
            plan(documents, writes)
            try:
                await self.commit_turns.commit(self.db, writes)
            except Conflict:
                continue  # another worker counted some of them: read again
            counted += len(documents)
            if len(documents) < batch:
                break
        return counted

    async def _plan_shop_binds(self, bound: list[dict], writes: WriteSet) -> None:
        """The binds of the shop and of each poster template, per day, and the promoters whose first member
        was bound (marked, so that each is counted once)."""
        firsts: dict[str, dict] = {}
        for entry in bound:  # in id order: each upline's earliest bind first
            firsts.setdefault(entry["upline_id"], entry)
        counted_before = await self.funnel.marked(FIRST_BOUND_MEMBER, list(firsts))
        new_promoters = [entry for upline_id, entry in firsts.items() if upline_id not in counted_before]
        writes.insert(FIRSTS, [first_mark(FIRST_BOUND_MEMBER, entry["upline_id"], entry["at"])
                               for entry in new_promoters])
        shop: dict[str, Counter] = {}
        for entry in bound:
            shop.setdefault(china_day(entry["at"]), Counter())["binds"] += 1
        for entry in new_promoters:
            shop[china_day(entry["at"])]["new_promoters"] += 1
        for day, increments in shop.items():
            writes.update(DAILY_TOTALS, shop_update(day, BIND_LOG, increments))
        per_template = Counter((entry["template"], china_day(entry["at"])) for entry in bound if entry.get("template"))
        for (template_id, day), count in per_template.items():
            writes.update(DAILY_TOTALS, template_update(template_id, day, BIND_LOG, {"binds": count}))


def _plan_tallies(tallies: list[dict], writes: WriteSet) -> None:
    per_day: dict[str, Counter] = {}
    for tally in tallies:
        for day, totals in tally["days"].items():
            per_day.setdefault(day, Counter()).update(totals)
    _plan_ledger_totals(per_day, str(tallies[0]["_id"]), writes)


def _plan_entries(entries: list[dict], writes: WriteSet) -> None:
    per_day: dict[str, Counter] = {}
    for entry in entries:
        add_movement(per_day, EntryKind(entry["kind"]), Bucket(entry["bucket"]), entry["amount_fen"], entry["at"])
    _plan_ledger_totals(per_day, str(entries[0]["_id"]), writes)


def _plan_ledger_totals(per_day: dict[str, Counter], counted: str, writes: WriteSet) -> None:
    for day, totals in per_day.items():
        for update in ledger_updates(day, counted, totals):
            writes.update(DAILY_TOTALS, update)


def _plan_funnel_events(events: list[dict], writes: WriteSet) -> None:
    """Scans and visits into the promoter's, the template's and the shop's counters of their days."""
    per_promoter = Counter((event["promoter_id"], event["day"], event["counter"]) for event in events)
    for (promoter_id, day, counter), count in per_promoter.items():
        writes.update(PROMOTER_DAILY, daily_update(promoter_id, day, {counter: count}))
    per_day = Counter((event["day"], event["counter"]) for event in events)
    for (day, counter), count in per_day.items():
        writes.update(DAILY_TOTALS, shop_update(day, str(events[0]["_id"]), {counter: count}))
    per_template = Counter((event["template_id"], event["day"], event["counter"])
                           for event in events if event.get("template_id"))
    for (template_id, day, counter), count in per_template.items():
        writes.update(DAILY_TOTALS, template_update(template_id, day, str(events[0]["_id"]), {counter: count}))
