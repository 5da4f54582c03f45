"""Helpers for the order, commission, ledger and notification tests (plain functions, no fixtures).

Members are written straight into the `members` collection with their
ancestors, as the relations feature keeps them, so a test can build any tree.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from bson import ObjectId

from services.runtime import Runtime
from bot.worker import job_handlers
from distribution.commission_rules import CommissionRules
from distribution.grades import GradeSettings
from distribution.orders import NewEvent, NewOrder

T0 = datetime(2026, 5, 1, 4, 0, tzinfo=timezone.utc)  # 12:00 in China


def at(days: float = 0, seconds: float = 0) -> datetime:
    return T0 + timedelta(days=days, seconds=seconds)


def iso(moment: datetime) -> str:
    return moment.isoformat()


async def add_member(runtime: Runtime, upline: dict | None = None, **fields: Any) -> dict:
    member_id = str(ObjectId())
    document = {
        "_id": member_id,
        "created_at": T0 - timedelta(days=30),
        "nickname": None,
        "avatar_url": None,
        "upline_id": upline["_id"] if upline else None,
        "ancestor_ids": [upline["_id"], *upline["ancestor_ids"]] if upline else [],
        "bound_at": T0 - timedelta(days=20) if upline else None,
        "bind_source": "oa_scan" if upline else None,
        "direct_count": 0,
        "team_count": 0,
        **fields,
    }
    await runtime.db["members"].insert_one(document)
    if upline:
        await runtime.db["members"].update_one({"_id": upline["_id"]}, {"$inc": {"direct_count": 1}})
    return document


async def chain(runtime: Runtime, depth: int, **fields: Any) -> list[dict]:
    """`depth` + 1 members, each the upline of the next: the root first, the deepest (the buyer) last."""
    members = [await add_member(runtime, **fields)]
    for _ in range(depth):
        members.append(await add_member(runtime, members[-1], **fields))
    return members


async def put_rules(runtime: Runtime, **rules: Any) -> CommissionRules:
    value = CommissionRules(**rules)
    await runtime.merchant_settings.put(value)
    return value


async def put_grades(runtime: Runtime, *grades: dict) -> GradeSettings:
    value = GradeSettings.from_dict({"grades": list(grades)})
    await runtime.merchant_settings.put(value)
    return value


def item(paid_fen: int, sku: str = "tea", qty: int = 1, category: str | None = None, title: str = "龙井茶") -> dict:
    return {"sku": sku, "title": title, "qty": qty, "paid_fen": paid_fen, "category": category}


async def create_order(runtime: Runtime, order_no: str, buyer: dict, items: list[dict],
                       paid_at: datetime | None = None, now: datetime | None = None):
    body = {"order_no": order_no, "buyer": {"member_id": buyer["_id"]}, "items": items}
    if paid_at is not None:
        body["paid_at"] = iso(paid_at)
    return await runtime.orders.create(NewOrder.from_dict(body), now=now)


async def send_event(runtime: Runtime, order_no: str, event_id: str, type: str, when: datetime | None = None,
                     items: list[dict] | None = None):
    body: dict[str, Any] = {"event_id": event_id, "type": type}
    if when is not None:
        body["at"] = iso(when)
    if items is not None:
        body["items"] = items
    return await runtime.orders.receive_event(order_no, NewEvent.from_dict(body))


async def drain(runtime: Runtime, consumer: str = "test-worker") -> int:
    return await runtime.queue.drain(consumer, job_handlers(runtime))


async def backlog_queued(runtime: Runtime, seconds_ago: float) -> None:
    """The oldest job of a backlog, queued `seconds_ago` and still waiting (nothing works it off); before any
    other job of the test, whose ids must be newer."""
    await runtime.redis.xadd(runtime.queue.stream, {"job": "a job of the backlog"},
                             id=f"{int(datetime.now(timezone.utc).timestamp() * 1000 - seconds_ago * 1000)}-0")


async def backlog_drained(runtime: Runtime) -> None:
    oldest = (await runtime.redis.xrange(runtime.queue.stream, count=1))[0][0]
    await runtime.redis.xdel(runtime.queue.stream, oldest)


async def paid_order(runtime: Runtime, order_no: str, buyer: dict, items: list[dict],
                     when: datetime = T0) -> None:
    """Create, pay and let the worker do everything that follows."""
    await create_order(runtime, order_no, buyer, items)
    await send_event(runtime, order_no, f"{order_no}-paid", "paid", when)
    await drain(runtime)


async def balances(runtime: Runtime, member: dict | str) -> tuple[int, int, int]:
    member_id = member if isinstance(member, str) else member["_id"]
    found = await runtime.ledger.balances(member_id)
    return found["frozen_fen"], found["available_fen"], found["locked_fen"]


async def commissions_of(runtime: Runtime, order_no: str) -> list[tuple[str, int, int, str]]:
    """(beneficiary, level, net fen, status) of each commission of the order, by item and level."""
    documents = await runtime.db["commissions"].find({"order_no": order_no}).sort("_id", 1).to_list()
    return [(each["beneficiary_id"], each["level"],
             each["amount_fen"] - each["cancelled_fen"] - each["clawed_back_fen"], each["status"])
            for each in documents]


async def assert_ledger_clean(runtime: Runtime) -> None:
    report = await runtime.ledger.verify()
    assert report.clean, [str(each) for each in report.differences]
