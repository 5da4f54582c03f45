"""Whole lists read for exports: newest first, a batch at a time, however long the list.

A single cursor over a million documents is what MongoDB streams best, but
SecantusDB reads every document a query matches before it answers (and a
range read after a cursor key matches everything below it, once per batch).
So a list is read in time windows, each an indexed range read bounded on both
sides: a window starts an hour wide and is resized after each read to hold
about a batch (four times wider while sparse, narrower in proportion while
dense). Each window is read through a cursor of `batch` documents, so this
process holds one batch whatever a window holds, and the documents come out
in batches of `batch` however the windows fall.

The documents are those of the stores that own them (`stores.members`,
`stores.orders`, `stores.ledger`, `stores.withdrawals`, `stores.stats`); this
module only reads them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import pymongo
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.cursor import AsyncCursor
from pymongo.asynchronous.database import AsyncDatabase

from distribution.calendar import CHINA
from stores.ledger import ACCOUNTS, LEDGER_ENTRIES
from stores.members import BUYER_TOTALS, MEMBERS
from stores.orders import COMMISSIONS, ORDERS, PROMOTER_FIELD
from stores.stats import PROMOTER_DAILY
from stores.withdrawals import WITHDRAWALS

FIRST_WINDOW = timedelta(hours=1)
NARROWEST_WINDOW = timedelta(seconds=1)
# Past this width the next window is everything older: a list ends in a dozen reads below its oldest document.
WIDEST_WINDOW = timedelta(days=20 * 365)
GROWTH = 4
WINDOW_READ_SECONDS = 120.0
# SecantusDB matches `$in` by walking its list for every document it reads, so a read of n ids costs n²:
# a batch's ids are asked for this many at a time.
IDS_PER_READ = 100


async def newest_first(collection: AsyncCollection, query: dict[str, Any], time_field: str, batch: int,
                       newest: datetime | None = None, oldest: datetime | None = None) -> AsyncIterator[list[dict]]:
    """The documents matching `query`, newest first by `time_field` then `_id`, in batches of `batch`: those
    before `newest` (else all) and at or after `oldest` (else all)."""
    order = [(time_field, -1), ("_id", -1)]
    ready: list[dict] = []
    edge = newest or datetime.now(timezone.utc)
    width = FIRST_WINDOW
    # Without `newest`, whatever is dated after now (a clock ahead) is read first, in one window.
    window: dict[str, Any] | None = None if newest else {"$gte": edge}
    lower, last = edge, False
    while True:
        if window is None:
            lower = edge - width
            if oldest is not None and lower <= oldest:
                window, last = {"$gte": oldest, "$lt": edge}, True
            elif width > WIDEST_WINDOW:
                window, last = {"$lt": edge}, True
            else:
                window = {"$gte": lower, "$lt": edge}
        read = 0
        # The time field first: SecantusDB serves a filter by the first field it has an index for.
        async with collection.find({time_field: window, **query}).sort(order).batch_size(batch) as cursor:
            async for document in _window(cursor, batch):
                ready.append(document)
                read += 1
                if len(ready) == batch:
                    yield ready
                    ready = []
        if last:
            break
        edge, window = lower, None
        if read < batch // 2:
            width *= GROWTH
        elif read > 2 * batch:
            width = max(width * batch / read, NARROWEST_WINDOW)
    if ready:
        yield ready


async def _window(cursor: AsyncCursor, batch: int) -> AsyncIterator[dict]:
    # SecantusDB reads a whole window before it answers with the first batch: a window grown wide across a
    # stretch of nothing may meet a dense one, and take longer than a store's usual time limit.
    with pymongo.timeout(WINDOW_READ_SECONDS):
        documents = await cursor.to_list(batch)
    while documents:
        for document in documents:
            yield document
        documents = await cursor.to_list(batch)


async def _in_one_read(collection: AsyncCollection, query: dict[str, Any]) -> AsyncIterator[list[dict]]:
    """The few documents of one order, newest first, in one batch."""
    documents = await collection.find(query).sort([("created_at", -1), ("_id", -1)]).to_list()
    if documents:
        yield documents


def _equal(**values: Any) -> dict[str, Any]:
    """A query matching each field given a value; a field given None is not filtered by."""
    return {field: value for field, value in values.items() if value is not None}


def _time_window(time_field: str, newest: datetime | None, oldest: datetime | None) -> dict[str, Any]:
    window = {**({"$lt": newest} if newest is not None else {}), **({"$gte": oldest} if oldest is not None else {})}
    return {time_field: window} if window else {}


def _day_start(day: date) -> datetime:
    """The first instant of a China calendar day, in UTC."""
    return datetime.combine(day, time(), CHINA).astimezone(timezone.utc)


def time_range(first_day: date | None, last_day: date | None) -> tuple[datetime | None, datetime | None]:
    """(newest, oldest) of China days `first_day` to `last_day`, both included; None where open."""
    return (_day_start(last_day + timedelta(days=1)) if last_day else None,
            _day_start(first_day) if first_day else None)


class ExportStore:
    def __init__(self, db: AsyncDatabase):
        self.db = db

    def members(self, promoter_status: str | None, frozen: bool | None, grade: str | None, first_day: date | None,
                last_day: date | None, batch: int) -> AsyncIterator[list[dict]]:
        """Members by when they joined, filtered as `stores.members.MemberStore.search` filters them."""
        query = _equal(promoter_status=promoter_status, frozen=frozen, grade=grade)
        return newest_first(self.db[MEMBERS], query, "created_at", batch, *time_range(first_day, last_day))

    def orders(self, status: str | None, promoter_id: str | None, direct: bool, order_no: str | None,
               created_from: datetime | None, created_before: datetime | None,
               batch: int) -> AsyncIterator[list[dict]]:
        """Orders by when they were created, filtered as `stores.orders.OrderStore.order_page` filters them."""
        query = _equal(status=status, **{PROMOTER_FIELD[direct]: promoter_id})
        if order_no is not None:
            return _in_one_read(self.db[ORDERS], {"_id": order_no, **query,
                                                  **_time_window("created_at", created_before, created_from)})
        return newest_first(self.db[ORDERS], query, "created_at", batch, created_before, created_from)

    def commissions(self, status: str | None, member_id: str | None, order_no: str | None, first_day: date | None,
                    last_day: date | None, batch: int) -> AsyncIterator[list[dict]]:
        """Commissions by when they were created, as the commission lists order them."""
        query = _equal(status=status, beneficiary_id=member_id)
        newest, oldest = time_range(first_day, last_day)
        if order_no is not None:
            return _in_one_read(self.db[COMMISSIONS], {"order_no": order_no, **query,
                                                       **_time_window("created_at", newest, oldest)})
        return newest_first(self.db[COMMISSIONS], query, "created_at", batch, newest, oldest)

    def ledger(self, member_id: str | None, first_day: date | None, last_day: date | None,
               batch: int) -> AsyncIterator[list[dict]]:
        query = _equal(account_id=member_id)
        return newest_first(self.db[LEDGER_ENTRIES], query, "at", batch, *time_range(first_day, last_day))

    def withdrawals(self, status: str | None, member_id: str | None, first_day: date | None, last_day: date | None,
                    batch: int) -> AsyncIterator[list[dict]]:
        query = _equal(status=status, member_id=member_id)
        return newest_first(self.db[WITHDRAWALS], query, "created_at", batch, *time_range(first_day, last_day))

    async def promoter_days(self, member_id: str | None, first_day: date, last_day: date,
                            batch: int) -> AsyncIterator[list[dict]]:
        """The promoters' daily counters, newest day first, a day's promoters by id: one indexed read per day
        (or one for a single promoter's days)."""
        daily = self.db[PROMOTER_DAILY]
        if member_id is not None:
            query = {"member_id": member_id, "day": {"$gte": first_day.isoformat(), "$lte": last_day.isoformat()}}
            documents = await daily.find(query).sort("day", -1).to_list()
            for start in range(0, len(documents), batch):
                yield documents[start:start + batch]
            return
        ready: list[dict] = []
        day = last_day
        while day >= first_day:
            async with daily.find({"day": day.isoformat()}).sort("_id", 1).batch_size(batch) as cursor:
                async for document in cursor:
                    ready.append(document)
                    if len(ready) == batch:
                        yield ready
                        ready = []
            day -= timedelta(days=1)
        if ready:
            yield ready

    async def nicknames(self, member_ids: set[str]) -> dict[str, str | None]:
        return {member["_id"]: member.get("nickname")
                async for member in self._by_ids(MEMBERS, member_ids, {"nickname": 1})}

    async def balances(self, member_ids: set[str]) -> dict[str, dict]:
        """Member id -> its account (`stores.ledger`), for those that have one."""
        return {account["_id"]: account async for account in self._by_ids(ACCOUNTS, member_ids)}

    async def buyer_totals(self, member_ids: set[str]) -> dict[str, dict]:
        """Member id -> its order totals as a buyer (`stores.members.BUYER_TOTALS`), for those that have them."""
        return {totals["_id"]: totals async for totals in self._by_ids(BUYER_TOTALS, member_ids)}

    async def _by_ids(self, collection: str, ids: set[str], projection: dict | None = None) -> AsyncIterator[dict]:
        ordered = sorted(ids)
        for start in range(0, len(ordered), IDS_PER_READ):
            async for document in self.db[collection].find({"_id": {"$in": ordered[start:start + IDS_PER_READ]}},
                                                           projection):
                yield document
