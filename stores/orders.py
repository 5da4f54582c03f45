"""Orders, their events and their commissions in MongoDB: the only module that knows their shape on disk.

- `orders`: `{_id: order_no, buyer, buyer_id, buyer_is_promoter, upline_chain, items: [{sku, title, qty,
  paid_fen, category, refunded_fen}], total_fen, refunded_fen, status, paid_at, confirmed_at,
  unfreeze_at, closed_at, commissions_posted, in_buyer_totals, request_hash, created_at, version}`, and
  from the payment `commission_mode` (level | chain_move; absent on orders paid before it was kept: level)
  with, in the chain-move mode, `reward_beneficiaries: {direct_id, team_id, peer_id}` and
  `reward_settings` (the `ChainMoveSettings` it was paid under).
  `version` rises with every applied event: each step is guarded on the version it was planned on.
  `in_buyer_totals` is set with the payment that added the order to its buyer's `order_count` and
  `order_fen` (`stores.members.BUYER_TOTALS`), so that only such an order's refunds take anything off them.
  An order placed in the mini-program also holds `checkout: {source, member_id, request_hash, out_trade_no,
  reservation_id, address_sealed, close_at, confirm_at, prepay_id, transaction_id, payment_problem,
  refund_qty: [units refunded or being refunded, by item index], closed_unpaid}` (`services.checkout`).
- `order_events`: `{_id: "<order_no>:<event_id>", order_no, event_id, type, at, items, request_hash,
  received_at, state: pending | waiting | applied, outcome, applied_at, retry_at}`.
- `commissions`: `{_id: "<order_no>:<item index>:<level>", order_no, item_index, sku, beneficiary_id,
  level, mode, reward, amount_fen, item_paid_fen, refunded_fen, cancelled_fen, clawed_back_fen, status,
  unfreeze_at, created_at, settled_at, sort_key}`; `mode` is the order's `commission_mode` (absent on
  older ones: level), `reward` the chain-move reward's kind (direct | team | peer) or null; lists go
  newest first by `(created_at, _id)`, exports by `sort_key`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo import UpdateMany
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from distribution.orders import OrderStatus
from stores.paging import newest_first
from stores.writes import WriteSet

ORDERS = "orders"
ORDER_EVENTS = "order_events"
COMMISSIONS = "commissions"
IN_BUYER_TOTALS = "in_buyer_totals"
# A risk flag that holds a commission names itself in its `held_by` (`stores.risk`): it settles once none does.
HELD_BY = "held_by"
NOT_HELD = {f"{HELD_BY}.0": {"$exists": False}}
# Where an order's promoter is found in its chain snapshot: anywhere in it, or as the buyer's nearest upline.
PROMOTER_FIELD = {False: "upline_chain", True: "upline_chain.0"}


def event_key(order_no: str, event_id: str) -> str:
    # order numbers never hold ":" (see distribution.orders), so the key is unambiguous
    return f"{order_no}:{event_id}"


def commission_id(order_no: str, item_index: int, level: int) -> str:
    return f"{order_no}:{item_index}:{level}"


def sort_key(at: datetime, document_id: str) -> str:
    """Newest first by `created_at`, ties broken by id; ISO UTC strings sort as the times do."""
    return f"{at.strftime('%Y-%m-%dT%H:%M:%S.%f')}|{document_id}"


class OrderStore:
    def __init__(self, db: AsyncDatabase):
        self.orders = db[ORDERS]
        self.events = db[ORDER_EVENTS]
        self.commissions = db[COMMISSIONS]

    async def order(self, order_no: str) -> dict | None:
        return await self.orders.find_one({"_id": order_no})

    async def several(self, order_nos: list[str]) -> dict[str, dict]:
        """The orders of `order_nos` that exist, by number, in one read."""
        return {order["_id"]: order async for order in self.orders.find({"_id": {"$in": order_nos}})}

    async def best_direct_buyers(self, promoter_id: str, since: datetime, limit: int) -> list[tuple[str, int]]:
        """The `limit` buyers who paid most, net of refunds, for their orders created since `since` while
        `promoter_id` was their nearest upline: `(buyer id, fen)`, most first, ties by id. One read through the
        `(upline_chain.0, status, created_at)` index of those orders alone."""
        pipeline = [
            {"$match": {PROMOTER_FIELD[True]: promoter_id,
                        "status": {"$in": [OrderStatus.PAID.value, OrderStatus.CONFIRMED.value]},
                        "created_at": {"$gte": since}}},
            {"$group": {"_id": "$buyer_id", "fen": {"$sum": {"$subtract": ["$total_fen", "$refunded_fen"]}}}},
            {"$match": {"_id": {"$type": "string"}, "fen": {"$gt": 0}}},
            {"$sort": {"fen": -1, "_id": 1}},
            {"$limit": limit},
        ]
        return [(row["_id"], int(row["fen"])) async for row in await self.orders.aggregate(pipeline)]

    async def insert_event(self, document: dict) -> bool:
        """False when this event of this order was received already."""
        try:
            await self.events.insert_one(document)
        except DuplicateKeyError:
            return False
        return True

    async def event(self, order_no: str, event_id: str) -> dict | None:
        return await self.events.find_one({"_id": event_key(order_no, event_id)})

    async def events_of(self, order_no: str) -> list[dict]:
        return await self.events.find({"order_no": order_no}).to_list()

    async def unapplied_events_of(self, order_nos: list[str]) -> dict[str, list[dict]]:
        """The events of `order_nos` not applied yet, by order number, in one read."""
        by_order: dict[str, list[dict]] = {}
        async for event in self.events.find({"order_no": {"$in": order_nos}, "state": {"$ne": "applied"}}):
            by_order.setdefault(event["order_no"], []).append(event)
        return by_order

    async def mark_waiting(self, event_ids: list[str], waiting_for: str) -> None:
        if event_ids:
            await self.events.update_many(
                {"_id": {"$in": event_ids}, "state": "pending"},
                {"$set": {"state": "waiting", "outcome": f"waiting for {waiting_for}"}},
            )

    async def mark_applied(self, event_ids: list[str], outcome: str, at: datetime) -> None:
        """Mark events that change nothing as applied (not guarded: only for outcomes that cannot change)."""
        if event_ids:
            await self.events.update_many(
                {"_id": {"$in": event_ids}, "state": {"$ne": "applied"}},
                {"$set": {"state": "applied", "outcome": outcome, "applied_at": at}},
            )

    async def due_events(self, now: datetime, limit: int) -> list[dict]:
        """Pending events whose job may have been lost: received (or last swept) before their retry time."""
        cursor = self.events.find({"state": "pending", "retry_at": {"$lte": now}}, {"order_no": 1}).limit(limit)
        return await cursor.to_list()

    @staticmethod
    def plan_postpone(event_ids: list[str], retry_at: datetime, writes: WriteSet) -> None:
        """Move the events' retry time, in a transaction: a plain update meeting a worker's transaction on one
        of them would wait for it while blocking the collection (SecantusDB retries it holding its lock)."""
        writes.update(ORDER_EVENTS, UpdateMany({"_id": {"$in": event_ids}}, {"$set": {"retry_at": retry_at}}))

    async def commissions_of(self, order_no: str) -> list[dict]:
        return await self.commissions.find({"order_no": order_no}).sort("_id", 1).to_list()

    async def due_commissions(self, now: datetime, limit: int, held_beneficiaries: Sequence[str] = ()) -> list[dict]:
        # A commission a statement holds waits for the statement's review, not for its own time; one of a
        # held beneficiary (a frozen member) waits until they are not.
        query = {"status": "frozen", "unfreeze_at": {"$lte": now}, "statement_id": None, **NOT_HELD}
        if held_beneficiaries:
            query["beneficiary_id"] = {"$nin": list(held_beneficiaries)}
        cursor = self.commissions.find(query)
        cursor = cursor.limit(limit)
        return await cursor.to_list()

    async def order_page(self, status: str | None, promoter_id: str | None, direct: bool, order_no: str | None,
                         created_from: datetime | None, created_before: datetime | None, limit: int,
                         after: tuple[datetime, str] | None, now: datetime) -> list[dict]:
        """Orders newest first by `created_at` (`created_from <= created_at < created_before`), after the cursor
        `(created_at, _id)`: read in time bands below `now`, by the filter's own index, about a page at a time."""
        query: dict[str, Any] = {}
        if status:
            query["status"] = status
        if promoter_id:
            query[PROMOTER_FIELD[direct]] = promoter_id
        if order_no:  # one order at most, all on the first page: one read, no bands
            return [] if after else await newest_first(self.orders, {**query, "_id": order_no}, "created_at", limit,
                                                       None, oldest=created_from, before=created_before)
        return await newest_first(self.orders, query, "created_at", limit, after, now, oldest=created_from,
                                  before=created_before)

    async def commission_page(self, member_id: str | None, status: str | None, order_no: str | None, limit: int,
                              after: tuple[datetime, str] | None, now: datetime) -> list[dict]:
        """Commissions newest first by `created_at`, after the cursor `(created_at, _id)`: read in time bands
        below `now`, by the filter's own index, about a page at a time; an order's few in one read."""
        query: dict[str, Any] = {}
        if member_id:
            query["beneficiary_id"] = member_id
        if status:
            query["status"] = status
        if order_no:
            return await newest_first(self.commissions, {**query, "order_no": order_no}, "created_at", limit, after)
        return await newest_first(self.commissions, query, "created_at", limit, after, now)

    # orders placed in the mini-program (`checkout`)

    async def by_out_trade_no(self, out_trade_no: str) -> dict | None:
        return await self.orders.find_one({"checkout.out_trade_no": out_trade_no})

    async def checkout_due(self, status: str, due_field: str, now: datetime, limit: int) -> list[dict]:
        """Mini-program orders in `status` whose `checkout.<due_field>` time has come, soonest first."""
        key = f"checkout.{due_field}"
        return await self.orders.find({"status": status, key: {"$lte": now}}).sort(key, 1).limit(limit).to_list()

    async def set_checkout(self, order_no: str, fields: dict[str, Any], unless_set: str | None = None) -> bool:
        """Set `checkout.<name>` fields; with `unless_set`, only while that one is still null. False when the
        order is not there (or `unless_set` was set first)."""
        query: dict[str, Any] = {"_id": order_no, "checkout": {"$type": "object"}}
        if unless_set is not None:
            query[f"checkout.{unless_set}"] = None
        result = await self.orders.update_one(query, {"$set": {f"checkout.{name}": value
                                                               for name, value in fields.items()}})
        return result.modified_count == 1

    async def buyer_page(self, buyer_id: str, limit: int, after: tuple[datetime, str] | None,
                         now: datetime) -> list[dict]:
        """The buyer's orders, newest first by `created_at`, after the cursor `(created_at, _id)`."""
        return await newest_first(self.orders, {"buyer_id": buyer_id}, "created_at", limit, after, now)
