"""Orders from the merchant's system, and their events applied in order, exactly once.

What an order and an event must be, the order's states and the logical
order of its events are the domain's (`distribution.orders`); this module
receives, stores, queues and applies.

Receiving is fast and idempotent:

- `create` stores the order with the buyer's upline chain copied onto it (a
  later re-bind never moves its commissions), and whether the buyer is a
  promoter (for self-purchase: one the binding rules let be an upline).
  The level mode's commissions come from this chain. A
  replay of the same order number returns the stored order; a replay with
  other content is a conflict. An order sent with `paid_at` carries an
  implied `paid` event, stored in the order's own transaction.
- `receive_event` stores the event (unique per order and event id) and queues
  the order's job; a replay changes nothing; other content under a known id
  is a conflict.

Applying is the worker's (`apply_pending_many`, job `orders.apply_events`,
all the jobs of one read of the queue at once): it reads the orders and
their unapplied events in two reads, sorts each order's events in their
logical order, and applies the next event of every order in one transaction
with everything each causes (commissions, ledger entries and balances,
stats, the buyer's order totals, notification records), each guarded on its
order's `version` and on the event still being unapplied. A stale order
fails the whole transaction, which is then split in halves until only the
stale orders are left out; they alone are read again. Events that must
wait for the payment are marked `waiting` and applied by the run that
applies the payment. A job done twice, or two workers on one order, apply
each event once: the loser's guard fails and it re-reads.

The payment fixes which rules the order's commissions follow
(`commission_mode`): the level rules, or the chain-move mode
(`distribution.chain_move`) when it is enabled then. In that mode the order
also keeps the `reward_beneficiaries` it was paid under (the buyer's
recruiter and the first two bosses of its team-owner chain, found with two
reads whatever the depth) and the `reward_settings` whose rates apply, so
that switching the mode on or off, or a later join or upgrade, never changes
what an order already paid pays or reverses. Commissions that wait for
the confirmation are computed from that snapshot too.

The buyer's `order_count` and `order_fen` (what their upline's team page
shows, kept in `stores.members.BUYER_TOTALS`) count the orders they paid
and what those orders still hold: a paid order adds one and its total; a
refund takes its fen off, and the refund that leaves nothing paid (or the
closing of a paid order) takes the order off the count too.

A crash between storing an event and queueing its job leaves the event
`pending`: the sweep (`requeue_due`, periodic) queues its order again once
its `retry_at` has passed, and once the job may no longer be waiting behind
a backlog (`JobQueue.sweep_cutoff`): a sale-day burst that takes longer than
`SWEEP_AFTER` to drain is not queued a second time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from pymongo import AsyncMongoClient, UpdateMany
from pymongo.errors import ExecutionTimeout
from pymongo.asynchronous.database import AsyncDatabase

from distribution import errors
from distribution.binding import BindingSettings, may_be_upline
from distribution.calendar import china_time
from distribution.chain_move import ChainMoveSettings, RewardBeneficiaries, compute_rewards, reward_beneficiaries
from distribution.commission import CommissionLine, CommissionMode, beneficiary_chain, compute_commissions
from distribution.commission_rules import CommissionRules, Trigger
from distribution.orders import (
    BUYER_KEYS,
    EventState,
    EventType,
    NewEvent,
    NewOrder,
    OrderStatus,
    Refunds,
    check_not_ahead,
    check_refunds,
    ignored,
    logical_key,
    must_wait,
    plan_refund,
    the_buyer,
    unfreeze_time,
)
from services.commissions import (
    CommissionService,
    order_items,
    post_commissions,
    reverse_commissions,
)
from services.funnel import FunnelService
from services.grades import GradeService
from services.merchant_settings import MerchantSettings
from services.notifications import NotificationService, thing, yuan
from services.risk import RiskService
from stores.commit_turns import CommitTurns
from stores.job_queue import JobQueue
from stores.member_roles import MemberRoles
from stores.members import BUYER_TOTALS, MemberStore, buyer_totals_increment
from stores.notifications import NOTIFICATIONS
from stores.orders import COMMISSIONS, IN_BUYER_TOTALS, ORDER_EVENTS, ORDERS, OrderStore, event_key
from stores.writes import Conflict, WriteSet, commit, merged

log = logging.getLogger(__name__)

APPLY_JOB = "orders.apply_events"
# A pending event not applied by then had its job lost: the sweep queues its order again.
SWEEP_AFTER = timedelta(minutes=2)
MOST_ORDERS_PER_TRANSACTION = 32  # the queue's read: a batch of order jobs commits in one transaction
ORDERED_GOODS = "商品"  # the admin's new-order notice names the titles; this, should they all be blank


class OrderNotFound(errors.NotFound):
    code = "order_not_found"


class OrderConflict(errors.Conflict):
    """The same order number or event id was sent before with other content."""


@dataclass(frozen=True)
class OrderFilter:
    """Which orders a list shows; each combination is read through an index of its own (`stores.mongo`)."""

    status: OrderStatus | None = None
    promoter_id: str | None = None  # orders whose chain snapshot names this member
    direct: bool = False  # ... as the buyer's nearest upline
    order_no: str | None = None
    created_from: datetime | None = None
    created_before: datetime | None = None


@dataclass(frozen=True)
class Received:
    document: dict
    created: bool  # False: a replay of what was stored before


@dataclass(frozen=True)
class _PlannedEvent:
    """An order's next event with the writes of its step and the order's fields it changes."""

    order: dict
    event: dict
    writes: WriteSet
    changes: dict[str, Any]


# --- the service ---------------------------------------------------------------------------------


class OrderService:
    max_rounds = 50
    orders_per_transaction = MOST_ORDERS_PER_TRANSACTION  # this process's, adapted to the database's pace

    def __init__(self, client: AsyncMongoClient, db: AsyncDatabase, queue: JobQueue, commit_turns: CommitTurns,
                 merchant_settings: MerchantSettings, notifications: NotificationService, grades: GradeService,
                 commissions: CommissionService, risk: RiskService | None = None):
        self.client = client
        self.db = db
        self.commit_turns = commit_turns
        self.risk = risk  # None: no risk signals at payments and refunds
        self.store = OrderStore(db)
        self.members = MemberStore(db)
        self.member_roles = MemberRoles(db)
        self.queue = queue
        self.merchant_settings = merchant_settings
        self.notifications = notifications
        self.grades = grades
        self.commissions = commissions
        self.funnel = FunnelService(db, merchant_settings)

    # receiving

    async def create(self, new: NewOrder, now: datetime | None = None, checkout: Mapping[str, Any] | None = None,
                     ) -> Received:
        """Store the order (InvalidField: paid in the future, or a buyer named as two members; OrderConflict).
        `checkout`: what an order placed in the mini-program carries besides (`services.checkout`), stored with it."""
        now = now or _now()
        check_not_ahead("paid_at", new.paid_at, now)
        request_hash = new.request_hash()
        buyer = await self._find_buyer(new.buyer.ids())
        document = await self._order_document(new, buyer, request_hash, now)
        if checkout is not None:
            document["checkout"] = dict(checkout)
        # The order and the payment it implies are stored together: whatever fails, never one without the other.
        writes = WriteSet()
        writes.insert(ORDERS, [document])
        if new.paid_at is not None:
            payment = NewEvent.implied_payment(new.paid_at)
            writes.insert(ORDER_EVENTS, [self._event_document(new.order_no, payment, now)])
            writes.then(lambda: self.queue.enqueue(APPLY_JOB, {"order_no": new.order_no}))
        try:
            await commit(self.client, self.db, writes)
        except Conflict:  # a replay, or another request created it meanwhile
            existing = await self.store.order(new.order_no)
            if existing["request_hash"] != request_hash:
                raise OrderConflict(f"order {new.order_no} was created before with other content",
                                    field="order_no") from None
            return Received(existing, False)
        return Received(document, True)

    async def receive_event(self, order_no: str, event: NewEvent, now: datetime | None = None) -> Received:
        """Store and queue one event of an existing order (OrderNotFound; InvalidField when it does not fit the
        order or the clock; OrderConflict)."""
        now = now or _now()
        order = await self.store.order(order_no)
        if order is None:
            raise OrderNotFound(f"no order {order_no}")
        check_not_ahead("at", event.at, now)
        if event.refund_lines is not None:
            check_refunds(event.refund_lines, order)
        document = self._event_document(order_no, event, now)
        if await self.store.insert_event(document):
            await self.queue.enqueue(APPLY_JOB, {"order_no": order_no})
            return Received(document, True)
        existing = await self.store.event(order_no, event.event_id)
        if existing["request_hash"] != document["request_hash"]:
            raise OrderConflict(f"event {event.event_id} of order {order_no} was received before with other content",
                                field="event_id")
        return Received(existing, False)

    # reading

    async def get(self, order_no: str) -> dict:
        """The stored order with its `commissions` and its `events` in arrival order (OrderNotFound)."""
        order = await self.store.order(order_no)
        if order is None:
            raise OrderNotFound(f"no order {order_no}")
        events = sorted(await self.store.events_of(order_no), key=lambda event: (event["received_at"], event["_id"]))
        return {**order, "commissions": await self.store.commissions_of(order_no), "events": events}

    async def page(self, selected: OrderFilter, limit: int, after: tuple[datetime, str] | None,
                   now: datetime | None = None) -> list[dict]:
        """Orders newest first by the time they reached us, `limit` after the cursor `(created_at, order_no)`."""
        return await self.store.order_page(selected.status, selected.promoter_id, selected.direct, selected.order_no,
                                           selected.created_from, selected.created_before, limit, after, now or _now())

    # applying

    async def apply_pending(self, order_no: str) -> int:
        """Apply the order's unapplied events in their logical order; returns how many were applied."""
        return await self.apply_pending_many([order_no])

    async def apply_pending_many(self, order_nos: Sequence[str]) -> int:
        """Apply each order's unapplied events in their logical order; returns how many were applied.

        The orders and their events are read together; then the next event of
        every order commits in one transaction, each guarded on its order's
        version (`_commit`). After a commit the orders are carried forward in
        memory, and read again only when a guard fails (another worker got
        there first): those orders alone.
        """
        applied = 0
        stale = list(dict.fromkeys(order_nos))
        for _ in range(self.max_rounds):
            orders = await self.store.several(stale)
            unapplied = await self.store.unapplied_events_of(list(orders))
            pending = {order_no: (order, sorted(unapplied.get(order_no, []), key=logical_key))
                       for order_no, order in orders.items()}
            stale = []
            while ready := await self._next_events(pending):
                counted = await self.funnel.counted_buyers(order for order, event in ready)
                # Planned side by side: the reads some plans make overlap instead of queueing one behind another.
                committed, conflicted = await self._commit_in_turn(list(await asyncio.gather(
                    *(self._plan_event(order, event, counted) for order, event in ready))))
                applied += len(committed)
                for step in committed:
                    order_no = step.order["_id"]
                    order = {**step.order, **step.changes, "version": step.order["version"] + 1}
                    pending[order_no] = (order, [each for each in pending[order_no][1]
                                                 if each["_id"] != step.event["_id"]])
                for step in conflicted:
                    del pending[step.order["_id"]]
                    stale.append(step.order["_id"])
            if not stale:
                return applied
        raise RuntimeError(f"orders {', '.join(stale[:5])}: events kept changing under {self.max_rounds} attempts")

    async def _next_events(self, pending: dict[str, tuple[dict, list[dict]]]) -> list[tuple[dict, dict]]:
        """Each order's next event to apply; orders with none left are dropped from `pending`.

        Duplicates (a second payment, a second confirmation, anything after
        closing) are marked together, unguarded: what makes them duplicates
        never changes back. Events that must wait for the payment are marked
        waiting.
        """
        ignored_ids: dict[str, list[str]] = {}
        waiting: list[str] = []
        ready: list[tuple[dict, dict]] = []
        for order_no, (order, events) in list(pending.items()):
            for event in events:
                if (outcome := ignored(order, event)) is not None:
                    ignored_ids.setdefault(outcome, []).append(event["_id"])
            events = [event for event in events if ignored(order, event) is None]
            next_event = next((event for event in events if not must_wait(order, event)), None)
            if next_event is None:
                waiting += [event["_id"] for event in events if event["state"] == EventState.PENDING]
                del pending[order_no]
            else:
                pending[order_no] = (order, events)
                ready.append((order, next_event))
        for outcome, event_ids in ignored_ids.items():
            await self.store.mark_applied(event_ids, outcome, _now())
        await self.store.mark_waiting(waiting, "paid")
        return ready

    async def requeue_due(self, now: datetime | None = None, limit: int = 500) -> int:
        """The outbox sweep: orders with a pending event whose job was lost are queued again."""
        now = now or _now()
        due = await self.store.due_events(await self.queue.sweep_cutoff(now, SWEEP_AFTER), limit)
        if due:
            postponed = WriteSet()
            self.store.plan_postpone([event["_id"] for event in due], now + SWEEP_AFTER, postponed)
            try:
                await commit(self.client, self.db, postponed)
            except ExecutionTimeout:
                # A worker's batch transaction holds some of these events past the time limit. They are queued
                # all the same (each order's version refuses applying an event twice); a later round postpones.
                log.warning("the sweep could not postpone %d due events in time; queued anyway", len(due))
        for order_no in sorted({event["order_no"] for event in due}):
            await self.queue.enqueue(APPLY_JOB, {"order_no": order_no})
        return len(due)

    # internals

    async def _find_buyer(self, buyer: Mapping[str, str]) -> dict | None:
        """The member the order's buyer ids name: one read per id given (the shops send one, mostly)."""
        lookups = {"member_id": self.members.get, "unionid": self.members.by_unionid,
                   "oa_openid": self.members.by_oa_openid, "miniapp_openid": self.members.by_miniapp_openid}
        return the_buyer({key: await lookups[key](buyer[key]) for key in BUYER_KEYS if key in buyer})

    async def _order_document(self, new: NewOrder, buyer: dict | None, request_hash: str, now: datetime) -> dict:
        is_promoter = False
        if buyer is not None:
            try:
                binding = await self.merchant_settings.get(BindingSettings)
                is_promoter = may_be_upline(await self.members.candidate(buyer, binding), binding)
            except ValueError:  # a member document the domain cannot read (no bound_at): not a promoter
                log.warning("member %s is not a well-formed member document", buyer["_id"])
        return {
            "_id": new.order_no,
            "buyer": new.buyer.ids(),
            "buyer_id": buyer["_id"] if buyer else None,
            "buyer_is_promoter": is_promoter,
            # The snapshot: whoever earns on this order is decided from this chain, whatever binds later.
            "upline_chain": list(buyer.get("ancestor_ids", [])) if buyer else [],
            "upline_template": buyer.get("bind_template") if buyer else None,  # whose sales it counts in (funnel)
            "items": [{**item.to_dict(), "refunded_fen": 0} for item in new.items],
            "total_fen": new.total_fen,
            "refunded_fen": 0,
            "commission_fen": 0,
            "status": OrderStatus.CREATED,
            "paid_at": None,
            "confirmed_at": None,
            "unfreeze_at": None,
            "closed_at": None,
            "commissions_posted": False,
            "request_hash": request_hash,
            "created_at": now,
            "version": 0,
        }

    def _event_document(self, order_no: str, event: NewEvent, now: datetime) -> dict:
        refunds = event.refunds
        return {
            "_id": event_key(order_no, event.event_id),
            "order_no": order_no,
            "event_id": event.event_id,
            "type": event.type,
            "at": event.at,
            "items": [{"sku": sku, "refund_fen": fen} for sku, fen in refunds] if refunds is not None else None,
            "request_hash": event.request_hash(),
            "state": EventState.PENDING,
            "outcome": None,
            "received_at": now,
            "applied_at": None,
            "retry_at": now + SWEEP_AFTER,
        }

    async def _commit_in_turn(self, steps: list[_PlannedEvent]) -> tuple[list[_PlannedEvent], list[_PlannedEvent]]:
        """Commit the steps `orders_per_transaction` at a time; (committed, stale).

        A transaction that runs out of time (the database is slower than the
        batch needs) halves that number before its error is raised, and the
        job retried; each that commits grows it back by one.
        """
        committed: list[_PlannedEvent] = []
        stale: list[_PlannedEvent] = []
        rest = steps
        while rest:
            chunk, rest = rest[:self.orders_per_transaction], rest[self.orders_per_transaction:]
            try:
                done, conflicted = await self._commit(chunk)
            except ExecutionTimeout:
                self.orders_per_transaction = max(1, len(chunk) // 2)
                raise
            self.orders_per_transaction = min(MOST_ORDERS_PER_TRANSACTION, self.orders_per_transaction + 1)
            committed += done
            stale += conflicted
        return committed, stale

    async def _commit(self, steps: list[_PlannedEvent]) -> tuple[list[_PlannedEvent], list[_PlannedEvent]]:
        """Commit the steps in one transaction, their notifications queued by one job; (committed, stale).

        When one of them is stale (its guard fails, or it was done already)
        nothing is written, and the batch is split in halves, each committed on
        its own, so that only the stale ones are left out.
        """
        writes = merged(step.writes for step in steps)
        notification_ids = [document["_id"] for document in writes.inserts.get(NOTIFICATIONS, [])]
        writes.then(lambda: self.notifications.enqueue(notification_ids))
        try:
            # Every batch writes the shop's day totals (a few shards) and mostly some promoters of the other
            # workers' batches: the workers' commits take turns rather than conflict and retry (and end the
            # transaction of a worker that died in its turn).
            await self.commit_turns.commit(self.db, writes)
        except Conflict as conflict:
            if len(steps) == 1:
                log.info("order %s changed while applying %s (%s); reading it again",
                         steps[0].order["_id"], steps[0].event["event_id"], conflict)
                return [], steps
            half = len(steps) // 2
            (first, first_stale), (second, second_stale) = (await self._commit(steps[:half]),
                                                            await self._commit(steps[half:]))
            return first + second, first_stale + second_stale
        return steps, []

    async def _plan_event(self, order: dict, event: dict, counted: set[str]) -> _PlannedEvent:
        """One event and all it causes, as the writes of its step, guarded on the order's version."""
        now = _now()
        at = event.get("at") or event["received_at"]
        writes = WriteSet()
        changes: dict[str, Any] = {}
        outcome = await self._plan(order, event, at, now, writes, changes, counted)
        changes["updated_at"] = now
        writes.guard(ORDERS, {"_id": order["_id"], "version": order["version"]},
                     {"$set": changes, "$inc": {"version": 1}})
        writes.guard(ORDER_EVENTS, {"_id": event["_id"], "state": event["state"]},
                     {"$set": {"state": EventState.APPLIED, "outcome": outcome, "applied_at": now}})
        # The order's guard goes first: two workers on one order collide there, before anything else.
        writes.guards = {ORDERS: writes.guards.pop(ORDERS), ORDER_EVENTS: writes.guards.pop(ORDER_EVENTS),
                         **writes.guards}
        return _PlannedEvent(order, event, writes, changes)

    async def _plan(self, order: dict, event: dict, at: datetime, now: datetime, writes: WriteSet,
                    changes: dict[str, Any], counted: set[str]) -> str:
        """Add the event's writes; returns its outcome, as the order's events list shows it. `counted`: the
        buyers whose first paid order is counted (`FunnelService.counted_buyers`)."""
        kind, status = EventType(event["type"]), OrderStatus(order["status"])
        if (outcome := ignored(order, event)) is not None:
            return outcome
        if kind is EventType.PAID:
            return await self._paid(order, at, now, writes, changes, counted)
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

    async def _paid(self, order: dict, at: datetime, now: datetime, writes: WriteSet, changes: dict,
                    counted: set[str]) -> str:
        rules = await self.merchant_settings.get(CommissionRules)
        chain_move = await self.merchant_settings.get(ChainMoveSettings)
        changes.update(status=OrderStatus.PAID, paid_at=at)
        if chain_move.enabled:
            beneficiaries = await self._reward_beneficiaries(order.get("buyer_id"))
            changes.update(commission_mode=CommissionMode.CHAIN_MOVE, reward_beneficiaries=asdict(beneficiaries),
                           reward_settings=chain_move.to_dict())
        else:
            changes["commission_mode"] = CommissionMode.LEVEL
        if order.get("buyer_id"):
            writes.update(BUYER_TOTALS, buyer_totals_increment(order["buyer_id"], 1, order["total_fen"]))
            changes[IN_BUYER_TOTALS] = True
            self.funnel.plan_paid(order, at, writes, counted)
        writes.insert(NOTIFICATIONS, self.notifications.admin_records("new_order_admin", f"new_order_admin:{order['_id']}", {
            "order_no": order["_id"], "amount": yuan(order["total_fen"]), "time": china_time(at),
            "items": thing("、".join(item["title"] for item in order["items"]), ORDERED_GOODS),
        }, now))
        if rules.trigger is not Trigger.PAID:
            return "paid; commissions wait for confirmation"
        posted = await self._post({**order, **changes}, rules, at, None, now, writes, changes)
        return f"paid; {posted} commission fen frozen"

    async def _confirmed(self, order: dict, at: datetime, now: datetime, writes: WriteSet, changes: dict) -> str:
        rules = await self.merchant_settings.get(CommissionRules)
        unfreeze_at = unfreeze_time(at, rules.freeze_days)
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
        # Orders paid before the mode was recorded were all paid under the level rules.
        mode = CommissionMode(order.get("commission_mode", CommissionMode.LEVEL))
        if mode is CommissionMode.CHAIN_MOVE:
            lines = compute_rewards(order_items(order), RewardBeneficiaries(**order["reward_beneficiaries"]),
                                    ChainMoveSettings.from_dict(order["reward_settings"]))
        else:
            lines = await self._level_lines(order, rules, changes)
        if self.risk is not None:
            lines = await self.risk.on_commissions(order, lines, at, now, writes)
        posted = post_commissions(writes, self.notifications, order, lines, mode, at, unfreeze_at, now)
        changes.update(commissions_posted=True, commission_fen=posted.total_fen)
        return posted.total_fen

    async def _level_lines(self, order: dict, rules: CommissionRules, changes: dict) -> list[CommissionLine]:
        chain: tuple[str, ...] = ()
        if order.get("buyer_id"):
            chain = beneficiary_chain(order["buyer_id"], order["upline_chain"], order["buyer_is_promoter"], rules)
        grades = await self.grades.grades_of(list(chain)) if chain and rules.grade_rates_bp else {}
        changes.update(beneficiary_chain=list(chain), grades_at_posting=grades)
        return compute_commissions(order_items(order), chain, rules, grades)

    async def _reward_beneficiaries(self, buyer_id: str | None) -> RewardBeneficiaries:
        """Who earns on the buyer's payment in the chain-move mode, as the members stand now: the buyer's recruiter
        and the first two bosses of its team-owner chain, read with one `$in` whatever the chain's length."""
        buyer = await self.members.get(buyer_id) if buyer_id else None
        if buyer is None:
            return RewardBeneficiaries()
        owner_ids = buyer.get("owner_ids", [])
        return reward_beneficiaries(buyer.get("upline_id"), owner_ids, await self.member_roles.of(owner_ids))

    async def _refunded(self, order: dict, refund_ref: str, refunds: Refunds | None, at: datetime, now: datetime,
                        writes: WriteSet, changes: dict) -> str:
        refund = plan_refund(order, refunds)
        if not refund.by_item:
            return "nothing left to refund"
        reversed_fen = 0
        if order.get("commissions_posted"):
            reversed_fen = reverse_commissions(writes, await self.store.commissions_of(order["_id"]), refund.by_item,
                                               refund_ref, at, now)
        if order.get(IN_BUYER_TOTALS):
            orders_off = -1 if refund.everything_refunded else 0
            writes.update(BUYER_TOTALS, buyer_totals_increment(order["buyer_id"], orders_off, -refund.fen))
        if self.risk is not None:
            await self.risk.on_refund(order, refund.fen, at, now, writes)
        changes.update(items=refund.items, refunded_fen=refund.refunded_fen, last_refund_at=at)
        if refund.everything_refunded:
            changes["status"] = OrderStatus.REFUNDED
        return f"refunded {refund.fen} fen; {reversed_fen} commission fen reversed"


def _now() -> datetime:
    return datetime.now(timezone.utc)
