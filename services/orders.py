"""Orders from the merchant's system, and their events applied in order, exactly once.

Receiving is fast and idempotent:

- `create` stores the order with the buyer's upline chain copied onto it (a
  later re-bind never moves its commissions), and whether the buyer is a
  promoter (for self-purchase: one the binding rules let be an upline). A
  replay of the same order number returns the stored order; a replay with
  other content is a conflict. An order sent with `paid_at` carries an
  implied `paid` event.
- `receive_event` stores the event (unique per order and event id) and queues
  the order's job; a replay changes nothing; other content under a known id
  is a conflict.

Applying is the worker's (`apply_pending`, job `orders.apply_events`): it
reads the order and its unapplied events, sorts them in their logical order
(paid, confirmed, refunded, closed; then by time), and applies each in one
transaction with everything it causes (commissions, ledger entries and
balances, stats, notification records), guarded on the order's `version` and
on the event still being unapplied. A confirmation or refund of an order not
yet paid waits (state `waiting`) and is applied by the run that applies the
payment. A job done twice, or two workers on one order, apply each event once:
the loser's guard fails and it re-reads.

A crash between storing an event and queueing its job leaves the event
`pending`: the sweep (`requeue_due`, periodic) queues its order again once
its `retry_at` has passed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from typing import Any

from pymongo import AsyncMongoClient, UpdateMany
from pymongo.asynchronous.database import AsyncDatabase

from distribution.binding import BindingSettings, may_be_upline
from distribution.commission import OrderItem, beneficiary_chain, compute_commissions
from distribution.commission_rules import CommissionRules, Trigger
from distribution.records import InvalidField
from services.commissions import (
    CommissionService,
    commission_json,
    order_items,
    post_commissions,
    reverse_commissions,
)
from services.grades import GradeService
from services.merchant_settings import MerchantSettings
from services.notifications import NotificationService, china_time, yuan
from stores.job_queue import JobQueue
from stores.members import MemberStore, snapshot
from stores.notifications import NOTIFICATIONS
from stores.orders import COMMISSIONS, ORDER_EVENTS, ORDERS, OrderStore, event_key
from stores.writes import Conflict, WriteSet, commit

log = logging.getLogger(__name__)

APPLY_JOB = "orders.apply_events"
# A pending event not applied by then had its job lost: the sweep queues its order again.
SWEEP_AFTER = timedelta(minutes=2)
IMPLIED_PAID_EVENT = "_paid_at"  # merchants' event ids start with a letter or digit, so this cannot collide

ORDER_NO = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
EVENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}")
BUYER_KEYS = ("member_id", "unionid", "oa_openid", "miniapp_openid")  # tried in this order
MAX_ITEMS = 200
MAX_PAID_FEN = 100_000_000_000  # a billion yuan per item
MAX_QTY = 1_000_000
MAX_TEXT = {"sku": 64, "title": 200, "category": 64}
EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2100, 1, 1, tzinfo=timezone.utc)


class EventType(StrEnum):
    PAID = "paid"
    CONFIRMED = "confirmed"
    REFUNDED = "refunded"
    CLOSED = "closed"


LOGICAL_ORDER = {EventType.PAID: 0, EventType.CONFIRMED: 1, EventType.REFUNDED: 2, EventType.CLOSED: 3}


class OrderStatus(StrEnum):
    CREATED = "created"  # not paid yet
    PAID = "paid"
    CONFIRMED = "confirmed"  # the buyer confirmed receipt; the freeze period runs
    REFUNDED = "refunded"  # every item refunded in full
    CLOSED = "closed"


class EventState(StrEnum):
    PENDING = "pending"
    WAITING = "waiting"  # for the order to be paid
    APPLIED = "applied"


class OrderNotFound(LookupError):
    pass


class OrderConflict(ValueError):
    """The same order number or event id was sent before with other content."""


@dataclass(frozen=True)
class Received:
    document: dict
    created: bool  # False: a replay of what was stored before


# --- input -----------------------------------------------------------------------------------------


def parse_time(field: str, value: Any) -> datetime:
    """An ISO 8601 time with its UTC offset, as aware UTC."""
    if not isinstance(value, str):
        raise InvalidField(field, "must be an ISO 8601 date-time string with a UTC offset")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidField(field, f"{value[:64]!r} is not an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        raise InvalidField(field, "must carry a UTC offset (e.g. +08:00 or Z)")
    try:
        parsed = parsed.astimezone(timezone.utc)
    except OverflowError:
        parsed = EARLIEST - timedelta(days=1)
    if not EARLIEST <= parsed < LATEST:
        raise InvalidField(field, f"must be between {EARLIEST.year} and {LATEST.year}")
    return parsed


def _only_known(body: Any, known: set[str], what: str) -> Mapping:
    if not isinstance(body, Mapping):
        raise InvalidField(what, "must be a JSON object")
    for name in body:
        if name not in known:
            raise InvalidField(str(name), "is not a known field")
    return body


@dataclass(frozen=True)
class NewOrder:
    order_no: str
    buyer: dict[str, str]
    items: tuple[OrderItem, ...]
    paid_at: datetime | None

    def request_hash(self) -> str:
        content = {"buyer": self.buyer, "items": [item.to_dict() for item in self.items],
                   "paid_at": self.paid_at.isoformat() if self.paid_at else None}
        return hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def parse_new_order(body: Any) -> NewOrder:
    body = _only_known(body, {"order_no", "buyer", "items", "paid_at"}, "body")
    order_no = body.get("order_no")
    if not isinstance(order_no, str) or not ORDER_NO.fullmatch(order_no):
        raise InvalidField("order_no", "must be 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit")
    buyer = _only_known(body.get("buyer"), set(BUYER_KEYS), "buyer")
    if not buyer:
        raise InvalidField("buyer", f"must name the buyer by one of {', '.join(BUYER_KEYS)}")
    for key, value in buyer.items():
        if not isinstance(value, str) or not value.strip() or len(value) > 128:
            raise InvalidField(f"buyer.{key}", "must be a non-empty string")
    items = body.get("items")
    if not isinstance(items, list) or not items:
        raise InvalidField("items", "must be a non-empty list")
    if len(items) > MAX_ITEMS:
        raise InvalidField("items", f"must have at most {MAX_ITEMS} items")
    parsed_items = []
    for index, item in enumerate(items):
        field = f"items[{index}]"
        try:
            parsed = OrderItem.from_dict(item)
        except InvalidField as invalid:
            name = "" if invalid.field == OrderItem.__name__ else f".{invalid.field}"
            raise InvalidField(f"{field}{name}", str(invalid).split(": ", 1)[-1]) from None
        if parsed.paid_fen > MAX_PAID_FEN:
            raise InvalidField(f"{field}.paid_fen", f"must be at most {MAX_PAID_FEN}")
        if parsed.qty > MAX_QTY:
            raise InvalidField(f"{field}.qty", f"must be at most {MAX_QTY}")
        for name, longest in MAX_TEXT.items():
            value = getattr(parsed, name)
            if value is not None and len(value) > longest:
                raise InvalidField(f"{field}.{name}", f"must be at most {longest} characters")
        parsed_items.append(parsed)
    paid_at = parse_time("paid_at", body["paid_at"]) if body.get("paid_at") is not None else None
    return NewOrder(order_no, {key: value.strip() for key, value in buyer.items()}, tuple(parsed_items), paid_at)


@dataclass(frozen=True)
class NewEvent:
    event_id: str
    type: EventType
    at: datetime | None
    refunds: tuple[tuple[str, int], ...] | None  # (sku, refund_fen); None: refund whatever is left

    def request_hash(self) -> str:
        content = {"type": self.type.value, "at": self.at.isoformat() if self.at else None,
                   "items": [list(each) for each in self.refunds] if self.refunds is not None else None}
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def parse_event(body: Any, order: dict) -> NewEvent:
    body = _only_known(body, {"event_id", "type", "at", "items"}, "body")
    event_id = body.get("event_id")
    if not isinstance(event_id, str) or not EVENT_ID.fullmatch(event_id):
        raise InvalidField("event_id", "must be 1-128 letters, digits, '_', '.', ':' or '-', "
                                       "starting with a letter or digit")
    try:
        kind = EventType(body.get("type"))
    except ValueError:
        raise InvalidField("type", f"must be one of {', '.join(each.value for each in EventType)}") from None
    at = parse_time("at", body["at"]) if body.get("at") is not None else None
    refunds = None
    if body.get("items") is not None:
        if kind is not EventType.REFUNDED:
            raise InvalidField("items", "only a refunded event names items")
        refunds = _parse_refunds(body["items"], order)
    return NewEvent(event_id, kind, at, refunds)


def _parse_refunds(items: Any, order: dict) -> tuple[tuple[str, int], ...]:
    if not isinstance(items, list) or not items:
        raise InvalidField("items", "must be a non-empty list of {sku, refund_fen}; leave it out to refund everything")
    paid_by_sku: dict[str, int] = {}
    for item in order["items"]:
        paid_by_sku[item["sku"]] = paid_by_sku.get(item["sku"], 0) + item["paid_fen"]
    refunds: dict[str, int] = {}
    for index, item in enumerate(items):
        field = f"items[{index}]"
        item = _only_known(item, {"sku", "refund_fen"}, field)
        sku, refund_fen = item.get("sku"), item.get("refund_fen")
        if not isinstance(sku, str) or sku not in paid_by_sku:
            raise InvalidField(f"{field}.sku", "must be the sku of one of the order's items")
        if isinstance(refund_fen, bool) or not isinstance(refund_fen, int) or refund_fen < 1:
            raise InvalidField(f"{field}.refund_fen", "must be a whole number of fen, at least 1")
        refunds[sku] = refunds.get(sku, 0) + refund_fen
        if refunds[sku] > paid_by_sku[sku]:
            raise InvalidField(f"{field}.refund_fen", f"refunds more than the {paid_by_sku[sku]} fen paid for {sku}")
    return tuple(refunds.items())


def refund_by_item(order: dict, refunds: tuple[tuple[str, int], ...] | None) -> dict[int, int]:
    """Fen refunded now per item index: each sku's refund fills its items in order, never past what is left."""
    left = {index: item["paid_fen"] - item.get("refunded_fen", 0) for index, item in enumerate(order["items"])}
    if refunds is None:
        return {index: fen for index, fen in left.items() if fen > 0}
    result: dict[int, int] = {}
    for sku, refund_fen in refunds:
        for index, item in enumerate(order["items"]):
            if item["sku"] != sku or refund_fen <= 0:
                continue
            take = min(left[index], refund_fen)
            if take > 0:
                result[index] = result.get(index, 0) + take
                left[index] -= take
                refund_fen -= take
    return result


# --- presentation --------------------------------------------------------------------------------


def order_json(order: dict, commissions: list[dict] | None = None, events: list[dict] | None = None) -> dict:
    shown = {
        "order_no": order["_id"],
        "status": order["status"],
        "buyer": order["buyer"],
        "buyer_id": order.get("buyer_id"),
        "upline_chain": order.get("upline_chain", []),
        "items": [{key: item.get(key) for key in ("sku", "title", "qty", "paid_fen", "category", "refunded_fen")}
                  for item in order["items"]],
        "total_fen": order["total_fen"],
        "refunded_fen": order.get("refunded_fen", 0),
        "commission_fen": order.get("commission_fen", 0),
        "paid_at": order.get("paid_at"),
        "confirmed_at": order.get("confirmed_at"),
        "unfreeze_at": order.get("unfreeze_at"),
        "closed_at": order.get("closed_at"),
        "created_at": order["created_at"],
    }
    if commissions is not None:
        shown["commissions"] = [commission_json(each) for each in commissions]
    if events is not None:
        shown["events"] = [event_json(each) for each in sorted(events, key=lambda e: (e["received_at"], e["_id"]))]
    return shown


def event_json(event: dict) -> dict:
    return {"event_id": event["event_id"], "type": event["type"], "at": event.get("at"), "items": event.get("items"),
            "state": event["state"], "outcome": event.get("outcome"), "received_at": event["received_at"],
            "applied_at": event.get("applied_at")}


# --- the service ---------------------------------------------------------------------------------


class OrderService:
    max_rounds = 50

    def __init__(self, client: AsyncMongoClient, db: AsyncDatabase, queue: JobQueue,
                 merchant_settings: MerchantSettings, notifications: NotificationService, grades: GradeService,
                 commissions: CommissionService):
        self.client = client
        self.db = db
        self.store = OrderStore(db)
        self.members = MemberStore(db)
        self.queue = queue
        self.merchant_settings = merchant_settings
        self.notifications = notifications
        self.grades = grades
        self.commissions = commissions

    # receiving

    async def create(self, new: NewOrder, now: datetime | None = None) -> Received:
        now = now or _now()
        request_hash = new.request_hash()
        buyer = await self._find_buyer(new.buyer)
        document = await self._order_document(new, buyer, request_hash, now)
        if await self.store.insert_order(document):
            await self._imply_payment(document, now)
            return Received(document, True)
        existing = await self.store.order(new.order_no)  # a replay, or another request created it meanwhile
        if existing["request_hash"] != request_hash:
            raise OrderConflict(f"order {new.order_no} was created before with other content")
        await self._imply_payment(existing, now)  # in case the first request died before storing it
        return Received(existing, False)

    async def receive_event(self, order_no: str, body: Any, now: datetime | None = None) -> Received:
        """Parse (InvalidField), store and queue one event of an existing order (OrderNotFound)."""
        now = now or _now()
        order = await self.store.order(order_no)
        if order is None:
            raise OrderNotFound(order_no)
        event = parse_event(body, order)
        document = self._event_document(order_no, event, now)
        if await self.store.insert_event(document):
            await self.queue.enqueue(APPLY_JOB, {"order_no": order_no})
            return Received(document, True)
        existing = await self.store.event(order_no, event.event_id)
        if existing["request_hash"] != document["request_hash"]:
            raise OrderConflict(f"event {event.event_id} of order {order_no} was received before with other content")
        return Received(existing, False)

    # reading

    async def get(self, order_no: str) -> dict | None:
        order = await self.store.order(order_no)
        if order is None:
            return None
        return order_json(order, await self.store.commissions_of(order_no), await self.store.events_of(order_no))

    # applying

    async def apply_pending(self, order_no: str) -> int:
        """Apply the order's unapplied events in their logical order; returns how many were applied.

        Each event commits on its own, guarded on the order's version; after a
        commit the order is carried forward in memory, and read again only when
        a guard fails (another worker got there first).
        """
        applied = 0
        for _ in range(self.max_rounds):
            order = await self.store.order(order_no)
            if order is None:
                return applied
            events = sorted(
                (event for event in await self.store.events_of(order_no) if event["state"] != EventState.APPLIED),
                key=_logical_key,
            )
            while events:
                # Duplicates (a second payment, a second confirmation, anything after closing) are marked
                # together, unguarded: what makes them duplicates never changes back.
                ignored: dict[str, list[str]] = {}
                for event in events:
                    if (outcome := _ignored(order, event)) is not None:
                        ignored.setdefault(outcome, []).append(event["_id"])
                for outcome, event_ids in ignored.items():
                    await self.store.mark_applied(event_ids, outcome, _now())
                events = [event for event in events if _ignored(order, event) is None]
                ready = [event for event in events if not _must_wait(order, event)]
                if not ready:
                    await self.store.mark_waiting(
                        [event["_id"] for event in events if event["state"] == EventState.PENDING], "paid")
                    return applied
                try:
                    changes = await self._apply(order, ready[0])
                except Conflict as conflict:
                    log.info("order %s changed while applying %s (%s); reading it again",
                             order_no, ready[0]["event_id"], conflict)
                    break
                applied += 1
                order = {**order, **changes, "version": order["version"] + 1}
                events = [event for event in events if event["_id"] != ready[0]["_id"]]
            else:
                return applied
        raise RuntimeError(f"order {order_no}: events kept changing under {self.max_rounds} attempts")

    async def requeue_due(self, now: datetime | None = None, limit: int = 500) -> int:
        """The outbox sweep: orders with a pending event whose job was lost are queued again."""
        now = now or _now()
        due = await self.store.due_events(now, limit)
        await self.store.postpone([event["_id"] for event in due], now + SWEEP_AFTER)
        for order_no in sorted({event["order_no"] for event in due}):
            await self.queue.enqueue(APPLY_JOB, {"order_no": order_no})
        return len(due)

    # internals

    async def _find_buyer(self, buyer: dict[str, str]) -> dict | None:
        for key in BUYER_KEYS:
            if key in buyer:
                found = await self.members.collection.find_one({"_id" if key == "member_id" else key: buyer[key]})
                if found is not None:
                    return found
        return None

    async def _order_document(self, new: NewOrder, buyer: dict | None, request_hash: str, now: datetime) -> dict:
        is_promoter = False
        if buyer is not None:
            try:
                is_promoter = may_be_upline(snapshot(buyer), await self.merchant_settings.get(BindingSettings))
            except ValueError:  # a member document the domain cannot read (no bound_at): not a promoter
                log.warning("member %s is not a well-formed member document", buyer["_id"])
        items = [{**item.to_dict(), "refunded_fen": 0} for item in new.items]
        return {
            "_id": new.order_no,
            "buyer": new.buyer,
            "buyer_id": buyer["_id"] if buyer else None,
            "buyer_is_promoter": is_promoter,
            # The snapshot: whoever earns on this order is decided from this chain, whatever binds later.
            "upline_chain": list(buyer.get("ancestor_ids", [])) if buyer else [],
            "items": items,
            "total_fen": sum(item.paid_fen for item in new.items),
            "refunded_fen": 0,
            "commission_fen": 0,
            "status": OrderStatus.CREATED,
            "paid_at": None,
            "confirmed_at": None,
            "unfreeze_at": None,
            "closed_at": None,
            "commissions_posted": False,
            "request_hash": request_hash,
            "requested_paid_at": new.paid_at,
            "created_at": now,
            "version": 0,
        }

    async def _imply_payment(self, order: dict, now: datetime) -> None:
        paid_at = order.get("requested_paid_at")
        if paid_at is None:
            return
        event = NewEvent(IMPLIED_PAID_EVENT, EventType.PAID, paid_at, None)
        if await self.store.insert_event(self._event_document(order["_id"], event, now)):
            await self.queue.enqueue(APPLY_JOB, {"order_no": order["_id"]})

    def _event_document(self, order_no: str, event: NewEvent, now: datetime) -> dict:
        return {
            "_id": event_key(order_no, event.event_id),
            "order_no": order_no,
            "event_id": event.event_id,
            "type": event.type,
            "at": event.at,
            "items": [{"sku": sku, "refund_fen": fen} for sku, fen in event.refunds] if event.refunds is not None
            else None,
            "request_hash": event.request_hash(),
            "state": EventState.PENDING,
            "outcome": None,
            "received_at": now,
            "applied_at": None,
            "retry_at": now + SWEEP_AFTER,
        }

    async def _apply(self, order: dict, event: dict) -> dict[str, Any]:
        """Commit one event and all it causes; returns the order's changed fields."""
        now = _now()
        at = event.get("at") or event["received_at"]
        writes = WriteSet()
        changes: dict[str, Any] = {}
        outcome = await self._plan(order, event, at, now, writes, changes)
        changes["updated_at"] = now
        writes.guard(ORDERS, {"_id": order["_id"], "version": order["version"]},
                     {"$set": changes, "$inc": {"version": 1}})
        writes.guard(ORDER_EVENTS, {"_id": event["_id"], "state": event["state"]},
                     {"$set": {"state": EventState.APPLIED, "outcome": outcome, "applied_at": now}})
        # The order's guard goes first: two workers on one order collide there, before anything else.
        writes.guards = {ORDERS: writes.guards.pop(ORDERS), ORDER_EVENTS: writes.guards.pop(ORDER_EVENTS),
                         **writes.guards}
        notification_ids = [document["_id"] for document in writes.inserts.get(NOTIFICATIONS, [])]
        writes.then(lambda: self.notifications.enqueue(notification_ids))
        await commit(self.client, self.db, writes)
        return changes

    async def _plan(self, order: dict, event: dict, at: datetime, now: datetime, writes: WriteSet,
                    changes: dict[str, Any]) -> str:
        """Add the event's writes; returns its outcome, as the order's events list shows it."""
        kind, status = EventType(event["type"]), OrderStatus(order["status"])
        if (ignored := _ignored(order, event)) is not None:
            return ignored
        if kind is EventType.PAID:
            return await self._paid(order, at, now, writes, changes)
        if kind is EventType.CONFIRMED:
            return await self._confirmed(order, at, now, writes, changes)
        if kind is EventType.REFUNDED:
            refunds = tuple((each["sku"], each["refund_fen"]) for each in event["items"]) \
                if event.get("items") is not None else None
            return await self._refunded(order, event["event_id"], refunds, at, now, writes, changes)
        # closed
        if status is not OrderStatus.CREATED:
            outcome = await self._refunded(order, event["event_id"], None, at, now, writes, changes)
        else:
            outcome = "closed unpaid"
        changes.update(status=OrderStatus.CLOSED, closed_at=at)
        return outcome if outcome.startswith("closed") else f"closed; {outcome}"

    async def _paid(self, order: dict, at: datetime, now: datetime, writes: WriteSet, changes: dict) -> str:
        rules = await self.merchant_settings.get(CommissionRules)
        changes.update(status=OrderStatus.PAID, paid_at=at)
        writes.insert(NOTIFICATIONS, self.notifications.admin_records("new_order_admin", f"new_order_admin:{order['_id']}", {
            "order_no": order["_id"], "amount": yuan(order["total_fen"]), "time": china_time(at),
            "items": "、".join(item["title"] for item in order["items"])[:20],
        }, now))
        if rules.trigger is not Trigger.PAID:
            return "paid; commissions wait for confirmation"
        posted = await self._post(order, rules, at, None, now, writes, changes)
        return f"paid; {posted} commission fen frozen"

    async def _confirmed(self, order: dict, at: datetime, now: datetime, writes: WriteSet, changes: dict) -> str:
        rules = await self.merchant_settings.get(CommissionRules)
        unfreeze_at = at + timedelta(days=min(rules.freeze_days, (LATEST - at).days))
        changes.update(confirmed_at=at, unfreeze_at=unfreeze_at)
        if order["status"] == OrderStatus.PAID:
            changes["status"] = OrderStatus.CONFIRMED
        if order.get("commissions_posted"):
            writes.update(COMMISSIONS, UpdateMany({"order_no": order["_id"], "status": "frozen"},
                                                  {"$set": {"unfreeze_at": unfreeze_at}}))
            return f"confirmed; commissions unfreeze at {unfreeze_at.isoformat()}"
        posted = await self._post(order, rules, at, unfreeze_at, now, writes, changes)
        return f"confirmed; {posted} commission fen frozen until {unfreeze_at.isoformat()}"

    async def _post(self, order: dict, rules: CommissionRules, at: datetime, unfreeze_at: datetime | None,
                    now: datetime, writes: WriteSet, changes: dict) -> int:
        chain: tuple[str, ...] = ()
        if order.get("buyer_id"):
            chain = beneficiary_chain(order["buyer_id"], order["upline_chain"], order["buyer_is_promoter"], rules)
        grades = await self.grades.grades_of(list(chain)) if chain and rules.grade_rates_bp else {}
        lines = compute_commissions(order_items(order), chain, rules, grades)
        posted = post_commissions(writes, self.notifications, order, lines, at, unfreeze_at, now)
        changes.update(commissions_posted=True, commission_fen=posted.total_fen,
                       beneficiary_chain=list(chain), grades_at_posting=grades)
        return posted.total_fen

    async def _refunded(self, order: dict, refund_ref: str, refunds: tuple[tuple[str, int], ...] | None,
                        at: datetime, now: datetime, writes: WriteSet, changes: dict) -> str:
        by_item = refund_by_item(order, refunds)
        if not by_item:
            return "nothing left to refund"
        reversed_fen = 0
        if order.get("commissions_posted"):
            reversed_fen = reverse_commissions(writes, await self.store.commissions_of(order["_id"]), by_item,
                                               refund_ref, at, now)
        items = [dict(item) for item in order["items"]]
        for index, fen in by_item.items():
            items[index]["refunded_fen"] = items[index].get("refunded_fen", 0) + fen
        refunded_total = order.get("refunded_fen", 0) + sum(by_item.values())
        changes.update(items=items, refunded_fen=refunded_total, last_refund_at=at)
        if all(item["refunded_fen"] >= item["paid_fen"] for item in items):
            changes["status"] = OrderStatus.REFUNDED
        return f"refunded {sum(by_item.values())} fen; {reversed_fen} commission fen reversed"


def _logical_key(event: dict) -> tuple:
    return (LOGICAL_ORDER[EventType(event["type"])], event.get("at") or event["received_at"], event["received_at"],
            event["event_id"])


def _ignored(order: dict, event: dict) -> str | None:
    """Why the event changes nothing whatever else happens, or None when it may change something."""
    if order["status"] == OrderStatus.CLOSED:
        return "ignored: the order is closed"
    if event["type"] == EventType.PAID and order["status"] != OrderStatus.CREATED:
        return "ignored: already paid"
    if event["type"] == EventType.CONFIRMED and order.get("confirmed_at") is not None:
        return "ignored: already confirmed"
    return None


def _must_wait(order: dict, event: dict) -> bool:
    """A confirmation or refund waits until the order is paid (a closed order takes everything, as ignored)."""
    return order["status"] == OrderStatus.CREATED and event["type"] in (EventType.CONFIRMED, EventType.REFUNDED)


def _now() -> datetime:
    return datetime.now(timezone.utc)
