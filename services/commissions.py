"""Commissions: posting them for an order, cancelling or clawing them back on refunds, settling them.

Amounts come from the domain (`compute_commissions`, `refund_share`) and
money moves only as the domain's ledger movements (`commission_frozen`,
`commission_cancelled`, `commission_clawback`, `commission_settled`). The
functions here add a step's writes to a `WriteSet`; the order service
commits them together with the order's own change.

A commission is one (order item, beneficiary, level), `_id`
`<order_no>:<item index>:<level>`. Its `mode` says what the level means: in
the level mode the beneficiary's place up the buyer's chain, in the chain-move
mode the reward's kind (`reward`: direct, team or peer). Its life:

- `frozen` when posted (`unfreeze_at` unset until the buyer confirms);
- `settled` once `unfreeze_at` has passed (`settle_due`): what is left after
  cancellations moves from frozen to available. Under a settlement period
  policy a statement settles it instead (`services.statements`), and while a
  statement waiting for review holds it, it names the statement in
  `statement_id` and stays frozen;
- a refund before settlement cancels its share (pro rata by refunded fen)
  out of frozen: `cancelled` when nothing is left; after settlement it claws
  its share back out of available, which may go negative: `clawed_back` when
  nothing is left. Later settlements credit available first, so they pay the
  debt off before anything becomes withdrawable.

Settlement and refunds race only on a commission's own document: each writes
it with a guard on the status and amounts it read, so the loser re-reads.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import StrEnum

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from distribution.calendar import china_day, china_time
from distribution.chain_move import RewardKind
from distribution.commission import CommissionLine, CommissionMode, OrderItem, refund_share
from distribution.ledger import commission_cancelled, commission_clawback, commission_frozen, commission_settled
from distribution.orders import REFUNDED_BEFORE_POSTING
from distribution.settlement import SettlementPolicy, SettlementSettings
from services.grades import GradeService
from services.merchant_settings import MerchantSettings
from services.notifications import NotificationService, yuan
from stores.grades import PROMOTER_TOTALS, brought_update, totals_update
from stores.members import MemberStore
from stores.notifications import NOTIFICATIONS, NotificationStore
from stores.orders import COMMISSIONS, NOT_HELD, OrderStore, commission_id, sort_key
from stores.stats import PROMOTER_DAILY, daily_update
from stores.writes import Conflict, WriteSet, commit

log = logging.getLogger(__name__)


class CommissionStatus(StrEnum):
    FROZEN = "frozen"
    SETTLED = "settled"
    CANCELLED = "cancelled"  # refunded in full before settlement
    CLAWED_BACK = "clawed_back"  # refunded in full after settlement


def remaining_fen(commission: dict) -> int:
    return commission["amount_fen"] - commission.get("cancelled_fen", 0) - commission.get("clawed_back_fen", 0)


def reversal(status: str, refund_ref: str, share_fen: int, at: datetime) -> dict:
    """One refund's share of a commission, as the commission keeps it: cancelled while frozen, clawed back once
    settled."""
    figure = CommissionStatus.CANCELLED if status == CommissionStatus.FROZEN else CommissionStatus.CLAWED_BACK
    return {"figure": figure.value, "refund": refund_ref, "fen": share_fen, "at": at}


def frozen_as_read(commission: dict) -> dict:
    """A guard on a frozen commission as it was read: no refund, settlement or statement has changed it since, and
    no risk flag holds it."""
    return {"_id": commission["_id"], "status": CommissionStatus.FROZEN.value,
            "cancelled_fen": commission.get("cancelled_fen", 0), "statement_id": commission.get("statement_id"),
            **NOT_HELD}


@dataclass
class Posted:
    """What posting an order's commissions wrote, for the caller's summary."""

    lines: list[CommissionLine] = field(default_factory=list)
    notifications: list[str] = field(default_factory=list)

    @property
    def total_fen(self) -> int:
        return sum(line.amount_fen for line in self.lines)


def post_commissions(writes: WriteSet, notifications: NotificationService, order: dict, lines: Sequence[CommissionLine],
                     mode: CommissionMode, at: datetime, unfreeze_at: datetime | None, now: datetime) -> Posted:
    """Commissions for `lines` of an order paid under `mode`, frozen in the ledger, with the beneficiaries' stats
    and notifications.

    Items already partly refunded (possible when commissions wait for
    `confirmed`) have that share cancelled at once, so the figures are those
    of any other sequence of the same refunds.
    """
    order_no = order["_id"]
    items = order["items"]
    documents, entries = [], []
    per_beneficiary: dict[str, int] = defaultdict(int)
    levels: dict[str, int] = {}
    rewards: dict[str, list[str]] = defaultdict(list)  # the chain-move mode: the kinds each beneficiary earned
    for line in lines:
        cid = commission_id(order_no, line.item_index, line.level)
        refunded_fen = items[line.item_index].get("refunded_fen", 0)
        cancelled_fen = refund_share(line.amount_fen, line.item_paid_fen, 0, refunded_fen)
        entries += commission_frozen(line.beneficiary_id, cid, line.amount_fen)
        entries += commission_cancelled(line.beneficiary_id, cid, cancelled_fen, REFUNDED_BEFORE_POSTING)
        documents.append({
            "_id": cid,
            "order_no": order_no,
            "item_index": line.item_index,
            "sku": line.sku,
            "beneficiary_id": line.beneficiary_id,
            "level": line.level,
            "mode": mode,
            "reward": RewardKind(line.level).key if mode is CommissionMode.CHAIN_MOVE else None,
            "amount_fen": line.amount_fen,
            "item_paid_fen": line.item_paid_fen,
            "refunded_fen": refunded_fen,
            "cancelled_fen": cancelled_fen,
            "clawed_back_fen": 0,
            "reversals": [reversal(CommissionStatus.FROZEN, REFUNDED_BEFORE_POSTING, cancelled_fen, now)]
            if cancelled_fen else [],
            "status": CommissionStatus.CANCELLED if cancelled_fen == line.amount_fen else CommissionStatus.FROZEN,
            "unfreeze_at": unfreeze_at,
            "created_at": now,
            "settled_at": None,
            "sort_key": sort_key(now, cid),
        })
        per_beneficiary[line.beneficiary_id] += line.amount_fen
        levels.setdefault(line.beneficiary_id, line.level)
        if mode is CommissionMode.CHAIN_MOVE:
            words = RewardKind(line.level).words
            if words not in rewards[line.beneficiary_id]:
                rewards[line.beneficiary_id].append(words)
    if not documents:
        return Posted()
    writes.insert(COMMISSIONS, documents)
    writes.ledger(entries, now)
    day = china_day(at)
    posted = Posted(lines=list(lines))
    records = []
    for beneficiary_id, amount_fen in per_beneficiary.items():
        writes.update(PROMOTER_DAILY, daily_update(beneficiary_id, day, {
            "orders": 1, "paid_fen": order["total_fen"], "commission_fen": amount_fen}))
        writes.update(PROMOTER_TOTALS, brought_update(beneficiary_id, order["total_fen"]))
        # A reward's level is its kind, not a place in the chain: a template showing it reads the kinds' words.
        kind = {"reward": "、".join(rewards[beneficiary_id])} if mode is CommissionMode.CHAIN_MOVE \
            else {"level": levels[beneficiary_id]}
        records.append(notifications.member_record(
            "commission_arrived", f"commission_arrived:{order_no}:{beneficiary_id}", beneficiary_id,
            {"amount": yuan(amount_fen), "order_no": order_no, "time": china_time(at), **kind}, now))
    writes.insert(NOTIFICATIONS, records)
    posted.notifications = [record["_id"] for record in records]
    return posted


def reverse_commissions(writes: WriteSet, commissions: Sequence[dict], refund_by_item: dict[int, int], refund_ref: str,
                        at: datetime, now: datetime) -> int:
    """Cancel (frozen) or claw back (settled) each commission's share of a refund; returns the fen reversed."""
    reversed_total = 0
    per_beneficiary: dict[str, int] = defaultdict(int)
    for commission in commissions:
        refund_fen = refund_by_item.get(commission["item_index"], 0)
        if refund_fen <= 0:
            continue
        before = commission.get("refunded_fen", 0)
        share = refund_share(commission["amount_fen"], commission["item_paid_fen"], before, refund_fen)
        status = commission["status"]
        beneficiary_id, cid = commission["beneficiary_id"], commission["_id"]
        increments = {"refunded_fen": refund_fen}
        new_status = status
        if status == CommissionStatus.FROZEN:
            writes.ledger(commission_cancelled(beneficiary_id, cid, share, refund_ref), now)
            increments["cancelled_fen"] = share
            if remaining_fen(commission) - share == 0:
                new_status = CommissionStatus.CANCELLED
        elif status == CommissionStatus.SETTLED:
            writes.ledger(commission_clawback(beneficiary_id, cid, share, refund_ref), now)
            increments["clawed_back_fen"] = share
            if remaining_fen(commission) - share == 0:
                new_status = CommissionStatus.CLAWED_BACK
            # Settled sales shrink by the refunded part of the item.
            writes.update(PROMOTER_TOTALS, totals_update(
                beneficiary_id, -refund_fen if commission["level"] == 1 else 0, -refund_fen))
        elif share:
            raise ValueError(f"commission {cid} is {status} yet has {share} fen left to reverse")
        update = {"$inc": increments, "$set": {"status": new_status, "updated_at": now}}
        if share:  # the business record of the reversal, beside its ledger entries (services.finance reads both)
            update["$push"] = {"reversals": reversal(status, refund_ref, share, now)}
        writes.guard(COMMISSIONS, {"_id": cid, "status": status, "refunded_fen": before}, update)
        per_beneficiary[beneficiary_id] += share
        reversed_total += share
    day, refunded_fen = china_day(at), sum(refund_by_item.values())
    for beneficiary_id, amount_fen in per_beneficiary.items():
        writes.update(PROMOTER_DAILY, daily_update(beneficiary_id, day, {
            "commission_reversed_fen": amount_fen, "refunded_fen": refunded_fen}))
    return reversed_total


@dataclass
class Settlement:
    settled: int = 0
    settled_fen: int = 0
    members: set[str] = field(default_factory=set)


class CommissionService:
    def __init__(self, client: AsyncMongoClient, db: AsyncDatabase, notifications: NotificationService,
                 grades: GradeService, merchant_settings: MerchantSettings, batch: int = 500):
        self.client = client
        self.db = db
        self.merchant_settings = merchant_settings
        self.store = OrderStore(db)
        self.members = MemberStore(db)
        self.notification_records = NotificationStore(db)
        self.notifications = notifications
        self.grades = grades
        self.batch = batch

    async def page(self, member_id: str | None, status: str | None, order_no: str | None, limit: int,
                   after: tuple[datetime, str] | None, now: datetime | None = None) -> list[dict]:
        """Commissions newest first, of one promoter, in one status and/or of one order, `limit` after the cursor
        `(created_at, _id)`."""
        return await self.store.commission_page(member_id, status, order_no, limit, after,
                                                now or datetime.now(timezone.utc))

    async def settle_due(self, now: datetime | None = None) -> Settlement:
        """Settle every frozen commission whose `unfreeze_at` has passed at `now` (frozen -> available), unless
        a settlement period policy has statements settle them."""
        now = now or datetime.now(timezone.utc)
        result = Settlement()
        if (await self.merchant_settings.get(SettlementSettings)).policy is not SettlementPolicy.PER_COMMISSION:
            return result
        frozen_members = await self.members.frozen_ids()  # their commissions are held while they are frozen
        for _ in range(10_000):
            due = await self.store.due_commissions(now, self.batch, frozen_members)
            if not due:
                break
            settled_before = result.settled
            try:
                await self._settle(due, now, result)
            except Conflict:
                # A refund changed one of them meanwhile: settle one by one, skipping those that changed.
                for commission in due:
                    try:
                        await self._settle([commission], now, result)
                    except Conflict:
                        log.info("commission %s changed while settling; it is read again", commission["_id"])
            if len(due) < self.batch or result.settled == settled_before:
                break  # all due are done, or those left keep changing: the next run takes them
        if result.members:
            await self.grades.evaluate(sorted(result.members), "settlement", now)
        return result

    async def _settle(self, commissions: list[dict], now: datetime, result: Settlement) -> None:
        writes = WriteSet()
        members = await self.add_settlement(writes, commissions, now)
        await commit(self.client, self.db, writes)
        result.settled += len(commissions)
        result.settled_fen += sum(remaining_fen(commission) for commission in commissions)
        result.members.update(members)

    async def add_settlement(self, writes: WriteSet, commissions: list[dict], now: datetime,
                             statement_id: str | None = None) -> set[str]:
        """Add to `writes` the settlement of what is left of each of `commissions` (all frozen), with the
        beneficiaries' totals and notifications; by a statement, the commissions and their entries name it.
        Each commission is guarded on what was read of it, the statement holding it included. The
        beneficiaries, for their grades once committed."""
        per_order_member: dict[tuple[str, str], int] = defaultdict(int)
        totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for commission in commissions:
            amount_fen = remaining_fen(commission)
            beneficiary_id = commission["beneficiary_id"]
            writes.guard(
                COMMISSIONS,
                frozen_as_read(commission),
                {"$set": {"status": CommissionStatus.SETTLED, "settled_at": now, "settled_fen": amount_fen,
                          "updated_at": now, **({"statement_id": statement_id} if statement_id else {})}},
            )
            writes.ledger(commission_settled(beneficiary_id, commission["_id"], amount_fen, statement_id), now)
            net_sales = commission["item_paid_fen"] - commission.get("refunded_fen", 0)
            totals[beneficiary_id][0] += net_sales if commission["level"] == 1 else 0
            totals[beneficiary_id][1] += net_sales
            per_order_member[(commission["order_no"], beneficiary_id)] += amount_fen
        for member_id, (own, team) in totals.items():
            writes.update(PROMOTER_TOTALS, totals_update(member_id, own, team))
        records = [
            self.notifications.member_record(
                "commission_settled", f"commission_settled:{order_no}:{member_id}", member_id,
                {"amount": yuan(amount_fen), "order_no": order_no, "time": china_time(now)}, datetime.now(timezone.utc))
            for (order_no, member_id), amount_fen in per_order_member.items()
        ]
        ids = [record["_id"] for record in records]
        # Commissions of one order and member settle together (one unfreeze_at) unless a batch splits
        # them; a second notification for the same pair would collide, so the split remainder is silent.
        existing = await self.notification_records.recorded(ids)
        fresh = [record for record in records if record["_id"] not in existing]
        writes.insert(NOTIFICATIONS, fresh)
        fresh_ids = [record["_id"] for record in fresh]
        writes.then(lambda: self.notifications.enqueue(fresh_ids))
        return set(totals)


def order_items(order: dict) -> list[OrderItem]:
    return [OrderItem(sku=item["sku"], title=item["title"], qty=item["qty"], paid_fen=item["paid_fen"],
                      category=item.get("category")) for item in order["items"]]
