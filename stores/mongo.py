"""The MongoDB connection and every index the application relies on."""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

# Optional ids are unique only where present: members may have any of the three.
_PRESENT = {"$type": "string"}

INDEXES: dict[str, list[IndexModel]] = {
    "members": [
        IndexModel("oa_openid", unique=True, partialFilterExpression={"oa_openid": _PRESENT}),
        IndexModel("miniapp_openid", unique=True, partialFilterExpression={"miniapp_openid": _PRESENT}),
        IndexModel("unionid", unique=True, partialFilterExpression={"unionid": _PRESENT}),
        # Direct members, newest first, and the whole team at any depth: one index read each.
        IndexModel([("upline_id", ASCENDING), ("bound_at", DESCENDING), ("_id", DESCENDING)]),
        IndexModel([("ancestor_ids", ASCENDING), ("bound_at", DESCENDING), ("_id", DESCENDING)]),
        # Subtrees whose ancestors still await a rewrite after a move (a handful at any time).
        IndexModel("subtree_stale", partialFilterExpression={"subtree_stale": True}),
    ],
    "bind_log": [
        IndexModel([("member_id", ASCENDING), ("_id", DESCENDING)]),
        IndexModel([("notify", ASCENDING), ("at", ASCENDING)], partialFilterExpression={"notify": "pending"}),
    ],
}


def open_mongo(uri: str, db_name: str) -> tuple[AsyncMongoClient, AsyncDatabase]:
    client: AsyncMongoClient = AsyncMongoClient(uri, tz_aware=True, serverSelectionTimeoutMS=5000, connect=False)
    return client, client[db_name]


async def ensure_indexes(db: AsyncDatabase) -> None:
    """Idempotent: creating an index that exists with the same options is a no-op."""
    for collection, indexes in INDEXES.items():
        await db[collection].create_indexes(indexes)
