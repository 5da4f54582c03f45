"""Orders from the merchant's system: what a request must be, and how an order's events apply.

An order moves `created -> paid -> confirmed`, may be refunded item by item
(`refunded` once nothing paid is left) and may be closed at any point.
Events are applied in their logical order — paid, confirmed, refunded,
closed; then by time — whatever order they arrived in:

- a confirmation or refund of an order not yet paid waits for the payment
  (`must_wait`);
- an event that can change nothing whatever happens later (anything after
  closing, a second payment, a second confirmation) is ignored (`ignored`),
  and so is marked applied with that outcome.

Checks that need what is stored or the clock (a refund names the order's
skus and refunds no more than was paid; no time is in the future; the
buyer's ids name one member) are functions here too, raising `InvalidField`
like the request's own checks.

All datetimes are timezone-aware UTC.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import BeforeValidator, ConfigDict, Field, StringConstraints, model_validator

from distribution.commission import OrderItem
from distribution.commission_rules import ProductKey
from distribution.money import Fen
from distribution.records import InvalidField, Record, Text, matching

ORDER_NO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
EVENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
# Our own references sit beside merchants' event ids (in event keys, and as the refund a ledger entry names): they
# start with "_", which no event id can (EVENT_ID), so neither can collide with the other.
IMPLIED_PAID_EVENT = "_paid_at"  # the payment implied by an order created with `paid_at`
# The refund that cancels, at posting, the share of a commission already refunded (commissions posted when the
# buyer confirms, part of the item refunded between payment and confirmation).
REFUNDED_BEFORE_POSTING = "_refunded_before_posting"
BUYER_KEYS = ("member_id", "unionid", "oa_openid", "miniapp_openid")
MAX_ITEMS = 200
EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2100, 1, 1, tzinfo=timezone.utc)
# How far ahead of our clock the shop's may run: a time later than that has not happened yet.
CLOCK_SKEW = timedelta(minutes=5)


class OrderStatus(StrEnum):
    CREATED = "created"  # not paid yet
    PAID = "paid"
    CONFIRMED = "confirmed"  # the buyer confirmed receipt; the freeze period runs
    REFUNDED = "refunded"  # every item refunded in full
    CLOSED = "closed"


class EventType(StrEnum):
    PAID = "paid"
    CONFIRMED = "confirmed"
    REFUNDED = "refunded"
    CLOSED = "closed"


class EventState(StrEnum):
    PENDING = "pending"
    WAITING = "waiting"  # for the order to be paid
    APPLIED = "applied"


LOGICAL_ORDER = {EventType.PAID: 0, EventType.CONFIRMED: 1, EventType.REFUNDED: 2, EventType.CLOSED: 3}

Refunds = tuple[tuple[str, int], ...]  # (sku, refund_fen), one per sku


# --- what a request must be ---------------------------------------------------------------------------


def _utc_time(value: Any) -> datetime | None:
    """An ISO 8601 time with its UTC offset (or an aware datetime, in code), as aware UTC."""
    if value is None:
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ValueError(f"{value[:64]!r} is not an ISO 8601 date-time") from None
    else:
        raise ValueError("must be an ISO 8601 date-time string with a UTC offset")
    if parsed.tzinfo is None:
        raise ValueError("must carry a UTC offset (e.g. +08:00 or Z)")
    try:
        parsed = parsed.astimezone(timezone.utc)
    except OverflowError:  # a year-1 time east of UTC falls before the first representable instant
        parsed = EARLIEST - timedelta(days=1)
    if not EARLIEST <= parsed < LATEST:
        raise ValueError(f"must be between {EARLIEST.year} and {LATEST.year}")
    return parsed


UtcTime = Annotated[datetime | None, BeforeValidator(_utc_time)]
BuyerId = Annotated[Text, StringConstraints(strip_whitespace=True, max_length=128)]


class Buyer(Record):
    """Who bought: at least one id. Ids that name no member are passed over; ids naming different ones are refused."""

    member_id: BuyerId | None = Field(None, description="The member's id in this system.")
    unionid: BuyerId | None = Field(None, description="The buyer's WeChat unionid.")
    oa_openid: BuyerId | None = Field(None, description="The buyer's openid in the official account.")
    miniapp_openid: BuyerId | None = Field(None, description="The buyer's openid in the mini-program.")

    @model_validator(mode="after")
    def _names_someone(self) -> Self:
        if not self.ids():
            raise ValueError(f"must name the buyer by one of {', '.join(BUYER_KEYS)}")
        return self

    def ids(self) -> dict[str, str]:
        """The ids given, by name."""
        return {key: getattr(self, key) for key in BUYER_KEYS if getattr(self, key) is not None}


class NewOrder(Record):
    """An order as the shop's system reports it; idempotent by `order_no`."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "order_no": "SO-20260501-0001", "buyer": {"oa_openid": "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"},
        "items": [{"sku": "tea-gift-box", "title": "龙井茶礼盒", "qty": 2, "paid_fen": 19_800, "category": "drinks"}],
        "paid_at": "2026-05-01T12:00:00+08:00",
    }]})

    order_no: Annotated[str, StringConstraints(strict=True), matching(
        ORDER_NO.pattern, "must be 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit")] = Field(
        description="The shop's order number: unique, and the key that makes sending the order again harmless.")
    buyer: Buyer = Field(description="Who bought. Two ids naming different members are refused.")
    items: tuple[OrderItem, ...] = Field(min_length=1, max_length=MAX_ITEMS, description="What was bought.")
    paid_at: UtcTime = Field(None, description="When it was paid, if it was (then the order is paid as it is "
                                               "created); at most a few minutes ahead of the server's clock.")

    @model_validator(mode="before")
    @classmethod
    def _unknown_buyer_ids_by_name(cls, data: Any) -> Any:
        """An unknown buyer id is named by itself (`email`), as the merchant API has always answered."""
        buyer = data.get("buyer") if isinstance(data, Mapping) else None
        for name in buyer if isinstance(buyer, Mapping) else ():
            if name not in BUYER_KEYS:
                raise InvalidField(str(name), "is not a known field")
        return data

    @property
    def total_fen(self) -> int:
        return sum(item.paid_fen for item in self.items)

    def request_hash(self) -> str:
        """What a replay must repeat to be one (the order number aside)."""
        content = {"buyer": self.buyer.ids(), "items": [item.to_dict() for item in self.items],
                   "paid_at": self.paid_at.isoformat() if self.paid_at else None}
        return hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class RefundLine(Record):
    sku: ProductKey = Field(description="The sku of one of the order's items.")
    refund_fen: Annotated[Fen, Field(ge=1)] = Field(description="Fen refunded for it now.")


class NewEvent(Record):
    """Something that happened to an order; idempotent by `event_id` within the order."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"event_id": "pay-1", "type": "paid", "at": "2026-05-01T12:00:00+08:00"},
        {"event_id": "refund-1", "type": "refunded", "at": "2026-05-03T09:30:00+08:00",
         "items": [{"sku": "tea-gift-box", "refund_fen": 9_900}]},
    ]})

    event_id: Annotated[str, StringConstraints(strict=True), matching(
        EVENT_ID.pattern, "must be 1-128 letters, digits, '_', '.', ':' or '-', starting with a letter or digit")] = (
        Field(description="The shop's id of the event: the key that makes sending it again harmless."))
    type: EventType = Field(description="paid, confirmed (receipt confirmed; the freeze period starts), refunded "
                                        "or closed (whatever is left is refunded).")
    at: UtcTime = Field(None, description="When it happened (default: when it arrives); at most a few minutes "
                                          "ahead of the server's clock.")
    items: Annotated[tuple[RefundLine, ...], Field(min_length=1)] | None = Field(
        None, description="Refunded events only: what is refunded per sku. Left out, whatever is left is refunded.")

    @model_validator(mode="after")
    def _items_only_when_refunded(self) -> Self:
        if self.items is not None and self.type is not EventType.REFUNDED:
            raise InvalidField("items", "only a refunded event names items")
        return self

    @classmethod
    def implied_payment(cls, paid_at: datetime) -> NewEvent:
        """The `paid` event of an order created with `paid_at` (its id is no merchant's, hence not checked)."""
        return cls.model_construct(event_id=IMPLIED_PAID_EVENT, type=EventType.PAID, at=paid_at, items=None)

    @property
    def refund_lines(self) -> list[tuple[str, int]] | None:
        """(sku, refund_fen) as the request lists them; None: refund whatever is left."""
        return None if self.items is None else [(line.sku, line.refund_fen) for line in self.items]

    @property
    def refunds(self) -> Refunds | None:
        """The refund per sku, skus in the order the request first names them; None: whatever is left."""
        if self.items is None:
            return None
        per_sku: dict[str, int] = {}
        for line in self.items:
            per_sku[line.sku] = per_sku.get(line.sku, 0) + line.refund_fen
        return tuple(per_sku.items())

    def request_hash(self) -> str:
        """What a replay must repeat to be one (the event id aside)."""
        refunds = self.refunds
        content = {"type": self.type.value, "at": self.at.isoformat() if self.at else None,
                   "items": [list(each) for each in refunds] if refunds is not None else None}
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


# --- applying events --------------------------------------------------------------------------------


def logical_key(event: Mapping) -> tuple:
    """Sorts a stored order's events into the order they apply in: by type, then time, then arrival."""
    return (LOGICAL_ORDER[EventType(event["type"])], event.get("at") or event["received_at"], event["received_at"],
            event["event_id"])


def ignored(order: Mapping, event: Mapping) -> str | None:
    """Why the event changes nothing whatever else happens, or None when it may change something."""
    if order["status"] == OrderStatus.CLOSED:
        return "ignored: the order is closed"
    if event["type"] == EventType.PAID and order["status"] != OrderStatus.CREATED:
        return "ignored: already paid"
    if event["type"] == EventType.CONFIRMED and order.get("confirmed_at") is not None:
        return "ignored: already confirmed"
    return None


def must_wait(order: Mapping, event: Mapping) -> bool:
    """A confirmation or refund waits until the order is paid (a closed order takes everything, as ignored)."""
    return order["status"] == OrderStatus.CREATED and event["type"] in (EventType.CONFIRMED, EventType.REFUNDED)


def unfreeze_time(confirmed_at: datetime, freeze_days: int) -> datetime:
    """When commissions confirmed at `confirmed_at` unfreeze; never past the last time an order may carry."""
    return confirmed_at + timedelta(days=min(freeze_days, (LATEST - confirmed_at).days))


def refund_by_item(order: Mapping, refunds: Refunds | None) -> dict[int, int]:
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


@dataclass(frozen=True)
class Refund:
    """What a refund does to an order: fen per item index, and the order's items and totals after it."""

    by_item: dict[int, int]
    items: list[dict]
    refunded_fen: int  # the order's total refunded after this one
    everything_refunded: bool

    @property
    def fen(self) -> int:
        return sum(self.by_item.values())


def plan_refund(order: Mapping, refunds: Refunds | None) -> Refund:
    by_item = refund_by_item(order, refunds)
    items = [dict(item) for item in order["items"]]
    for index, fen in by_item.items():
        items[index]["refunded_fen"] = items[index].get("refunded_fen", 0) + fen
    return Refund(
        by_item=by_item,
        items=items,
        refunded_fen=order.get("refunded_fen", 0) + sum(by_item.values()),
        everything_refunded=all(item["refunded_fen"] >= item["paid_fen"] for item in items),
    )


# --- checks a request passes against what is stored ---------------------------------------------------


def check_not_ahead(field: str, at: datetime | None, now: datetime) -> None:
    """A time the shop reports must have happened: at most `CLOCK_SKEW` ahead of `now`."""
    if at is not None and at > now + CLOCK_SKEW:
        raise InvalidField(field, f"is in the future (more than {int(CLOCK_SKEW.total_seconds() // 60)} minutes "
                                  "ahead of the server's clock)")


def check_refunds(refunds: list[tuple[str, int]], order: Mapping) -> None:
    """Each refund line (in the request's order) names one of the order's skus, and no sku is refunded more
    than was paid for it; the field named is the line that crosses."""
    paid_by_sku: dict[str, int] = {}
    for item in order["items"]:
        paid_by_sku[item["sku"]] = paid_by_sku.get(item["sku"], 0) + item["paid_fen"]
    refunded: dict[str, int] = {}
    for index, (sku, refund_fen) in enumerate(refunds):
        if sku not in paid_by_sku:
            raise InvalidField(f"items[{index}].sku", "must be the sku of one of the order's items")
        refunded[sku] = refunded.get(sku, 0) + refund_fen
        if refunded[sku] > paid_by_sku[sku]:
            raise InvalidField(f"items[{index}].refund_fen",
                               f"refunds more than the {paid_by_sku[sku]} fen paid for {sku}")


def the_buyer(found: Mapping[str, dict | None]) -> dict | None:
    """The member an order's buyer identifiers name (identifier -> the member it found, or None).

    Identifiers that find nobody are passed over (a member may not yet hold
    every id the shop knows); two that find different members are refused,
    since crediting either would be a guess.
    """
    members = {member["_id"]: member for member in found.values() if member is not None}
    if len(members) > 1:
        disagreeing = ", ".join(key for key, member in found.items() if member is not None)
        raise InvalidField("buyer", f"names different members ({disagreeing} do not name the same one)")
    return next(iter(members.values()), None)
