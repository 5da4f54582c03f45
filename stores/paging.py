"""Newest-first pages by `(time, _id)` after a cursor, as indexed range reads.

The cursor is split into two queries (the same instant with a smaller id,
then strictly older) instead of one top-level `$or`, which SecantusDB
answers by scanning the whole collection.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection


async def newest_first(collection: AsyncCollection, query: dict[str, Any], time_field: str, limit: int,
                       after: tuple[datetime, str] | None) -> list[dict]:
    order = [(time_field, -1), ("_id", -1)]
    if after is None:
        return await collection.find(query).sort(order).limit(limit).to_list()
    at, last_id = after
    page = await collection.find({**query, time_field: at, "_id": {"$lt": last_id}}).sort(order).limit(limit).to_list()
    if len(page) < limit:
        page += await collection.find({**query, time_field: {"$lt": at}}).sort(order).limit(limit - len(page)).to_list()
    return page
