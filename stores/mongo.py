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
        # The same three for finding members by them: SecantusDB reads no partial index (it scans the collection
        # instead), MongoDB 5.0 and later keep such a plain index beside the unique partial one.
        *(IndexModel(name, name=f"{name}_lookup") for name in ("oa_openid", "miniapp_openid", "unionid")),
        # Direct members, newest first, and the whole team at any depth: one index read each.
        IndexModel([("upline_id", ASCENDING), ("bound_at", DESCENDING), ("_id", DESCENDING)]),
        IndexModel([("ancestor_ids", ASCENDING), ("bound_at", DESCENDING), ("_id", DESCENDING)]),
        IndexModel([("ancestor_ids.1", ASCENDING), ("bound_at", DESCENDING), ("_id", DESCENDING)]),
        # A moved subtree is rewritten in _id order, a batch per indexed range read.
        IndexModel([("ancestor_ids", ASCENDING), ("_id", ASCENDING)]),
        # The chain-move mode: the members a boss owns, newest first (read backwards), and its owner team's
        # chains rewritten after a move like the subtree's ancestors.
        IndexModel([("team_owner_id", ASCENDING), ("bound_at", ASCENDING), ("_id", ASCENDING)]),
        IndexModel([("owner_ids", ASCENDING), ("_id", ASCENDING)]),
        # Members whose binds await the worker's follow-up (a second's worth at any time).
        IndexModel("binds_to_follow_up.entry._id", sparse=True),
        # Subtrees whose ancestors still await a rewrite after a move (a handful at any time).
        IndexModel("subtree_stale", partialFilterExpression={"subtree_stale": True}),
        # Followers whose unionid the worker has not asked for yet (a second's worth at any time).
        IndexModel("unionid_unasked_since", partialFilterExpression={"unionid_unasked_since": {"$type": "date"}}),
        # Exports read members newest first by when they joined, a time window at a time (stores.exports), and
        # so does the member search (services.members.search): all of them, or by one key or filter.
        IndexModel([("created_at", DESCENDING), ("_id", DESCENDING)]),
        IndexModel([("nickname_keys", ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)]),
        # Not partial: SecantusDB reads no partial index, not even for a query within its filter.
        IndexModel([("phone_tail", ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)]),
        IndexModel([("grade", ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)]),
        IndexModel([("frozen", ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)]),
        IndexModel([("promoter_status", ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)]),
        # Bare documents folded into a member, erased with it (stores.personal_data).
        IndexModel("merged_into", sparse=True),
    ],
    "applications": [
        # One pending application per member; decided ones are history.
        IndexModel("member_id", unique=True, partialFilterExpression={"status": "pending"}),
        IndexModel("member_id", name="member_id_lookup"),  # every application of a member: SecantusDB reads no partial
        IndexModel([("status", ASCENDING), ("_id", DESCENDING)]),
    ],
    "bind_log": [
        IndexModel([("member_id", ASCENDING), ("_id", DESCENDING)]),
        # Binds counted into the promoters' stats, in id order (services.stats.count_binds).
        IndexModel([("result", ASCENDING), ("_id", ASCENDING)]),
    ],
    # Orders and commissions. Queries name only indexed fields: equality first, then one range.
    # Order lists, newest first: all, by status, by a promoter anywhere in the chain snapshot or first in it.
    # The times ascend: SecantusDB misses an entry equal to a `$gte` bound on a descending key followed by
    # another (a band starting at midnight would skip an order made then); MongoDB reads these backwards.
    "orders": [
        IndexModel([("created_at", ASCENDING), ("_id", ASCENDING)]),
        IndexModel([("status", ASCENDING), ("created_at", ASCENDING), ("_id", ASCENDING)]),
        IndexModel([("upline_chain", ASCENDING), ("created_at", ASCENDING), ("_id", ASCENDING)]),
        IndexModel([("upline_chain", ASCENDING), ("status", ASCENDING), ("created_at", ASCENDING),
                    ("_id", ASCENDING)]),
        IndexModel([("upline_chain.0", ASCENDING), ("created_at", ASCENDING), ("_id", ASCENDING)]),
        IndexModel([("upline_chain.0", ASCENDING), ("status", ASCENDING), ("created_at", ASCENDING),
                    ("_id", ASCENDING)]),
        # Mini-program orders (services.checkout): a buyer's own, newest first; the one a WeChat Pay payment
        # names; unpaid ones due to close and paid ones due to be confirmed (merchant-API orders have neither time).
        IndexModel([("buyer_id", ASCENDING), ("created_at", ASCENDING), ("_id", ASCENDING)]),
        IndexModel("checkout.out_trade_no", sparse=True),
        IndexModel([("status", ASCENDING), ("checkout.close_at", ASCENDING)]),
        IndexModel([("status", ASCENDING), ("checkout.confirm_at", ASCENDING)]),
    ],
    # Refunds of mini-program orders through WeChat Pay (stores.refunds): an order's, and those under way.
    "order_refunds": [IndexModel([("order_no", ASCENDING), ("created_at", ASCENDING)]),
                      IndexModel([("status", ASCENDING), ("check_at", ASCENDING)])],
    "order_events": [
        IndexModel("order_no"),
        IndexModel([("state", ASCENDING), ("retry_at", ASCENDING)]),  # the outbox sweep
    ],
    "commissions": [
        IndexModel("order_no"),
        IndexModel([("status", ASCENDING), ("unfreeze_at", ASCENDING)]),  # settlement: frozen and due
        # Lists and exports, newest first by (created_at, _id) as orders are: all, by status, by promoter, by both.
        IndexModel([("created_at", ASCENDING), ("_id", ASCENDING)]),
        IndexModel([("status", ASCENDING), ("created_at", ASCENDING), ("_id", ASCENDING)]),
        IndexModel([("beneficiary_id", ASCENDING), ("created_at", ASCENDING), ("_id", ASCENDING)]),
        IndexModel([("beneficiary_id", ASCENDING), ("status", ASCENDING), ("created_at", ASCENDING),
                    ("_id", ASCENDING)]),
        # The commissions a statement holds, released together when it is rejected (stores.statements). Not
        # sparse: the due ones are found as those without a statement.
        IndexModel("statement_id"),
        # The finance report's day (services.finance): commissions settled, and refunds' shares reversed, then.
        IndexModel("settled_at"),
        IndexModel("reversals.at"),
        IndexModel("held_by", sparse=True),  # those a risk flag holds, released or cancelled with it (stores.risk)
    ],
    # Statements (stores.statements), newest first: all, by status, by promoter, by both.
    "statements": [IndexModel([("created_at", ASCENDING), ("_id", ASCENDING)]),
                   IndexModel([("status", ASCENDING), ("created_at", ASCENDING), ("_id", ASCENDING)]),
                   IndexModel([("member_id", ASCENDING), ("created_at", ASCENDING), ("_id", ASCENDING)]),
                   IndexModel([("member_id", ASCENDING), ("status", ASCENDING), ("created_at", ASCENDING),
                               ("_id", ASCENDING)])],
    # A member's entries newest first; everyone's, for exports.
    "ledger_entries": [IndexModel([("account_id", ASCENDING), ("at", DESCENDING), ("_id", DESCENDING)]),
                       # Entries marked uncounted before there were tallies, until the worker has counted them.
                       IndexModel("uncounted", sparse=True),
                       IndexModel([("at", DESCENDING), ("_id", DESCENDING)]),
                       # The settled entries of one statement, which add up to its amount (stores.statements).
                       IndexModel("statement_id", sparse=True)],
    # Tallies the worker has not added to the shop's totals yet (a second's worth at any time); counted ones are
    # kept a day.
    "ledger_tallies": [IndexModel("uncounted", sparse=True), IndexModel("counted_at", expireAfterSeconds=86400)],
    "notifications": [IndexModel([("status", ASCENDING), ("retry_at", ASCENDING)]),
                      IndexModel("member_id")],  # a member's, for their export and erasure (stores.personal_data)
    # A day's promoters; one promoter's days, for exports.
    "promoter_daily": [IndexModel("day"), IndexModel([("member_id", ASCENDING), ("day", DESCENDING)])],
    # The shop's and the poster templates' days (stores.funnel): the dashboard reads a range of them.
    "daily_totals": [IndexModel([("scope", ASCENDING), ("day", ASCENDING)])],
    # Scans and visits the worker has not counted yet (a second's worth at any time); counted ones are kept a week.
    "funnel_events": [IndexModel("uncounted", sparse=True), IndexModel("at", expireAfterSeconds=7 * 86400)],
    "grade_changes": [IndexModel([("member_id", ASCENDING), ("at", ASCENDING)])],
    # Posters: one per member and template, read by `_id`; drawn posters expire 40 days after drawing
    # (asked for again, they are redrawn).
    "poster_images": [IndexModel("created_at", expireAfterSeconds=40 * 86400)],
    # Posters owed by customer-service message: the sweep's pending ones; kept for WeChat's 48 hours and a day.
    "poster_deliveries": [IndexModel([("status", ASCENDING), ("due_at", ASCENDING)]),
                          IndexModel("created_at", expireAfterSeconds=3 * 86400), IndexModel("member_id")],
    # Payouts under way, for the sweep of those nobody looked at in time (services.withdrawals.requeue_due);
    # lists newest first, in one status and/or of one member (with its history beside a review).
    # Risk flags (stores.risk): one per rule and subject; lists newest first by status, rule or promoter; the
    # flags of a withdrawal; the commissions and withdrawals a flag holds.
    "risk_flags": [IndexModel("key", unique=True), IndexModel([("status", ASCENDING), ("_id", DESCENDING)]),
                   IndexModel([("rule", ASCENDING), ("_id", DESCENDING)]),
                   IndexModel([("member_id", ASCENDING), ("_id", DESCENDING)]),
                   IndexModel("withdrawal_id", sparse=True)],
    "withdrawals": [IndexModel([("status", ASCENDING), ("next_check_at", ASCENDING)]),
                    IndexModel([("status", ASCENDING), ("_id", DESCENDING)]),
                    IndexModel([("member_id", ASCENDING), ("status", ASCENDING), ("_id", DESCENDING)]),
                    IndexModel([("member_id", ASCENDING), ("_id", DESCENDING)]),
                    # Exports read by creation time, a time window at a time (stores.exports).
                    IndexModel([("created_at", DESCENDING), ("_id", DESCENDING)]),
                    IndexModel([("member_id", ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)]),
                    # Paid or returned within a day (the finance report) or a year (tax figures): by their steps.
                    IndexModel([("status", ASCENDING), ("history.at", ASCENDING)]),
                    IndexModel("held_by", sparse=True)],  # those a risk flag holds (stores.risk)
    # The audit log, newest first: of one target, of one kind of target, or by one member of staff.
    "audit_log": [IndexModel([("target.kind", ASCENDING), ("target.id", ASCENDING), ("_id", DESCENDING)]),
                  IndexModel([("target.kind", ASCENDING), ("_id", DESCENDING)]),
                  IndexModel([("actor.name", ASCENDING), ("_id", DESCENDING)])],
    # The catalogue (stores.products): products newest first, all or those on sale; a product's SKUs (a SKU
    # itself is found by its code, its `_id`, which keeps codes unique across the catalogue).
    "products": [IndexModel([("created_at", ASCENDING), ("_id", ASCENDING)]),
                 IndexModel([("on_sale", ASCENDING), ("created_at", ASCENDING), ("_id", ASCENDING)])],
    "skus": [IndexModel("product_id")],
    # The promoter agreement (stores.agreements): each version's acceptances counted, a member's listed.
    "agreement_acceptances": [IndexModel("version"), IndexModel([("member_id", ASCENDING), ("version", DESCENDING)])],
    # Members' deletion requests (stores.personal_data), newest member first, all or in one status.
    "deletion_requests": [IndexModel([("status", ASCENDING), ("_id", DESCENDING)])],
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
