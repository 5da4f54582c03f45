"""The MongoDB connection and every index the application relies on."""

from __future__ import annotations

from typing import Any

import pymongo
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
        IndexModel([("ancestor_ids.1", ASCENDING), ("bound_at", DESCENDING), ("_id", DESCENDING)]),
        # A moved subtree is rewritten in _id order, a batch per indexed range read.
        IndexModel([("ancestor_ids", ASCENDING), ("_id", ASCENDING)]),
        # Members whose binds await the worker's follow-up (a second's worth at any time).
        IndexModel("binds_to_follow_up.entry._id", sparse=True),
        # Subtrees whose ancestors still await a rewrite after a move (a handful at any time).
        IndexModel("subtree_stale", partialFilterExpression={"subtree_stale": True}),
        # Followers whose unionid the worker has not asked for yet (a second's worth at any time).
        IndexModel("unionid_unasked_since", partialFilterExpression={"unionid_unasked_since": {"$type": "date"}}),
    ],
    "applications": [
        # One pending application per member; decided ones are history.
        IndexModel("member_id", unique=True, partialFilterExpression={"status": "pending"}),
        IndexModel([("status", ASCENDING), ("_id", DESCENDING)]),
    ],
    "bind_log": [
        IndexModel([("member_id", ASCENDING), ("_id", DESCENDING)]),
        # Binds counted into the promoters' stats, in id order (services.stats.count_binds).
        IndexModel([("result", ASCENDING), ("_id", ASCENDING)]),
    ],
    # Orders and commissions. Queries name only indexed fields: equality first, then one range.
    "order_events": [
        IndexModel("order_no"),
        IndexModel([("state", ASCENDING), ("retry_at", ASCENDING)]),  # the outbox sweep
    ],
    "commissions": [
        IndexModel("order_no"),
        IndexModel([("status", ASCENDING), ("unfreeze_at", ASCENDING)]),  # settlement: frozen and due
        IndexModel([("beneficiary_id", ASCENDING), ("sort_key", DESCENDING)]),
        IndexModel([("beneficiary_id", ASCENDING), ("status", ASCENDING), ("sort_key", DESCENDING)]),
        IndexModel([("status", ASCENDING), ("sort_key", DESCENDING)]),
        IndexModel([("sort_key", DESCENDING)]),
    ],
    "ledger_entries": [IndexModel([("account_id", ASCENDING), ("at", DESCENDING), ("_id", DESCENDING)])],
    "notifications": [IndexModel([("status", ASCENDING), ("retry_at", ASCENDING)])],
    "promoter_daily": [IndexModel("day")],
    "grade_changes": [IndexModel([("member_id", ASCENDING), ("at", ASCENDING)])],
    # Posters: a member's current poster of a template in one indexed read; drawn posters
    # expire 40 days after drawing (asked for again, they are redrawn).
    "poster_images": [
        IndexModel([("member_id", ASCENDING), ("template_key", ASCENDING), ("slot", ASCENDING),
                    ("person", ASCENDING), ("created_at", DESCENDING)]),
        IndexModel("created_at", expireAfterSeconds=40 * 86400),
    ],
    # Posters owed by customer-service message: the sweep's pending ones; kept for WeChat's 48 hours and a day.
    "poster_deliveries": [IndexModel([("status", ASCENDING), ("due_at", ASCENDING)]),
                          IndexModel("created_at", expireAfterSeconds=3 * 86400)],
    # Payouts under way, for the sweep of those nobody looked at in time (services.withdrawals.requeue_due).
    "withdrawals": [IndexModel([("status", ASCENDING), ("next_check_at", ASCENDING)])],
    # The audit log, newest first: of one target, or by one member of staff.
    "audit_log": [IndexModel([("target.kind", ASCENDING), ("target.id", ASCENDING), ("_id", DESCENDING)]),
                  IndexModel([("actor.name", ASCENDING), ("_id", DESCENDING)])],
    # Pushes kept while Redis was down, replayed oldest first (stores.kept_pushes).
    "pending_pushes": [IndexModel([("received_at", ASCENDING), ("_id", ASCENDING)])],
}


def open_mongo(uri: str, db_name: str, timeout_seconds: float,
               **client_options: Any) -> tuple[AsyncMongoClient, AsyncDatabase]:
    """A client whose every operation — finding the server, connecting, the answer, the driver's own retry — ends
    within `timeout_seconds` (each batch of a cursor on its own), so a caller meets a MongoDB that is down or cut
    off as an error in that time, not as a hang; the client finds the server again by itself once it is back.
    `client_options` add to these (benchmarks pass command listeners)."""
    limit_ms = round(timeout_seconds * 1000)
    client: AsyncMongoClient = AsyncMongoClient(uri, tz_aware=True, connect=False, timeoutMS=limit_ms,
                                                serverSelectionTimeoutMS=limit_ms, connectTimeoutMS=limit_ms,
                                                **client_options)
    return client, client[db_name]


# A new index on a large collection takes minutes to build: far longer than any request may wait.
INDEX_BUILD_SECONDS = 3600.0


async def ensure_indexes(db: AsyncDatabase) -> None:
    """Idempotent: creating an index that exists with the same options is a no-op."""
    with pymongo.timeout(INDEX_BUILD_SECONDS):
        for collection, indexes in INDEXES.items():
            await db[collection].create_indexes(indexes)
