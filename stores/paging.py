"""Newest-first pages by `(time, _id)` after a cursor, as indexed range reads.

The cursor is split into two queries (the same instant with a smaller id,
then strictly older) instead of one top-level `$or`, which SecantusDB
answers by scanning the whole collection.

SecantusDB also reads every document a query matches before it sorts and
limits (MongoDB stops after `limit` entries of the index), so a page of a
million-member team would read the million. Given an anchor — the cursor's
time, or for a first page a `newest` time no older than the newest match —
the older part is read in time bands just below it, each `BAND_GROWTH` times
wider than the last, until the page is full: a query reads about the page
and at most a few times more, whatever the collection holds.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

FIRST_BAND = timedelta(minutes=1)
BAND_GROWTH = 4
# Past this width the next band is everything older: a sparse list ends in a dozen queries.
WIDEST_BAND = timedelta(days=20 * 365)


async def newest_first(collection: AsyncCollection, query: dict[str, Any], time_field: str, limit: int,
                       after: tuple[datetime, str] | None, newest: datetime | None = None, *,
                       oldest: datetime | None = None, before: datetime | None = None) -> list[dict]:
    """`limit` documents matching `query`, newest first, after the cursor `(time, _id)`.

    `newest`, for long lists, is a time no older than the newest match: the
    reads then go in bands below it (or below the cursor), never all at once.
    `oldest` and `before` bound the times listed (`oldest <= time < before`);
    the bands stop at `oldest`.
    """
    order = [(time_field, -1), ("_id", -1)]
    floor = {"$gte": oldest} if oldest is not None else {}

    async def read(times: Any, count: int, extra: dict[str, Any] | None = None) -> list[dict]:
        """`times`: the time field's condition (a value or operators); empty: any time."""
        filter = {**query, **(extra or {}), **({time_field: times} if times else {})}
        return await collection.find(filter).sort(order).limit(count).to_list()

    if after is not None:
        edge, last_id = after
        page = await read(edge, limit, {"_id": {"$lt": last_id}})
        below_edge: dict[str, Any] = {"$lt": edge}
    else:
        page, below_edge = [], ({"$lt": before} if before is not None else {})
        if newest is None:
            return await read({**below_edge, **floor}, limit)
        # Open above the hint (what came after it is on this page too), unless the list ends below it.
        edge = min(newest, before) if before is not None else newest
    if newest is None:  # a short list: the rest in one read
        return page if len(page) == limit else page + await read({**below_edge, **floor}, limit - len(page))
    width = FIRST_BAND
    while len(page) < limit:
        lower = edge - width
        if width > WIDEST_BAND or (oldest is not None and lower <= oldest):
            return page + await read({**below_edge, **floor}, limit - len(page))
        page += await read({**below_edge, "$gte": lower}, limit - len(page))
        edge, below_edge, width = lower, {"$lt": lower}, width * BAND_GROWTH
    return page
