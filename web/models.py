"""What the APIs answer, declared once: each model is both the JSON an endpoint writes and its schema in
/openapi.json. A model built from a stored document says so in `from_document`, the one way to show it."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

from distribution.applications import ApplicationStatus
from distribution.binding import BindSource, PromoterStatus
from distribution.ledger import Bucket, EntryKind
from distribution.orders import EventState, EventType, OrderStatus
from distribution.withdrawals import BillState, WithdrawalMethod, WithdrawalStatus
from services.commissions import CommissionStatus, remaining_fen
from services.sealing import Sealer, mask_phone

# Stored times are aware UTC; shown as Python writes them ("+00:00", not "Z"), which clients already parse.
Time = Annotated[datetime, PlainSerializer(datetime.isoformat, return_type=str, when_used="json"),
                 WithJsonSchema({"type": "string", "format": "date-time"})]
Fen = Annotated[int, Field(description="an amount in fen (分), 1/100 yuan")]


class Answer(BaseModel):
    """A response body: every field is always present (null when it has no value)."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)


class Stored(Answer):
    """An answer that shows one stored document, whose `_id` it calls `id`."""

    id: str

    @classmethod
    def from_document(cls, document: dict) -> Self:
        return cls.model_validate({**document, "id": document["_id"]})


class ErrorDetail(BaseModel):
    """`field` is left out when no one field is to blame."""

    code: str = Field(description="what went wrong, for programs: `invalid`, `member_not_found`, ...")
    message: str = Field(description="what went wrong, for people")
    field: str | None = Field(None, description="the culprit, dotted for nested fields: `items[0].paid_fen`")


class Error(Answer):
    """Every 4xx and 5xx answer of the JSON API."""

    error: ErrorDetail


# --- members -------------------------------------------------------------------------------------


class Member(Stored):
    """A member as the merchant sees them."""

    oa_openid: str | None = None
    miniapp_openid: str | None = None
    unionid: str | None = None
    nickname: str | None = None
    avatar_url: str | None = None
    subscribed: bool | None = None
    upline_id: str | None = None
    ancestor_ids: list[str] = Field(default_factory=list, description="the uplines, nearest first")
    bound_at: Time | None = None
    bind_source: BindSource | None = None
    direct_count: int = 0
    team_count: int = 0
    frozen: bool | None = None
    promoter_status: PromoterStatus | None = None
    created_at: Time | None = None


def mask_name(name: str | None) -> str:
    """张** / a***: a teammate is recognisable to their upline, not identifiable by strangers."""
    if not name:
        return "*"
    return name[0] + "*" * min(max(len(name) - 1, 1), 3)


class Teammate(Answer):
    """A member of my team as the mini-program shows them: the name masked."""

    id: str
    nickname: str = Field(description="masked: 张**")
    avatar_url: str | None = None
    joined_at: Time | None = Field(None, description="when they joined my team")
    order_count: int = 0
    order_fen: Fen = 0

    @classmethod
    def from_document(cls, member: dict) -> Self:
        return cls.model_validate({**member, "id": member["_id"], "nickname": mask_name(member.get("nickname")),
                                   "joined_at": member.get("bound_at")})


class Balances(Answer):
    frozen_fen: Fen = Field(description="commissions not settled yet")
    available_fen: Fen = Field(description="what may be withdrawn")
    locked_fen: Fen = Field(description="withdrawals on their way")


class Upline(Answer):
    nickname: str | None


class Me(Answer):
    """The member's own profile, upline, balances and counters."""

    id: str
    nickname: str | None = None
    avatar_url: str | None = None
    phone: str | None = Field(None, description="masked: 138****5678")
    grade: str | None = None
    promoter_status: PromoterStatus | None = None
    upline: Upline | None = None
    balances: Balances
    direct_count: int = 0
    team_count: int = 0
    joined_at: Time

    @classmethod
    def from_document(cls, member: dict, upline: dict | None, balances: dict[str, int], sealer: Sealer) -> Self:
        sealed_phone = member.get("phone_sealed")
        return cls.model_validate({
            **member,
            "id": member["_id"],
            "phone": mask_phone(sealer.open(sealed_phone)) if sealed_phone else None,
            "upline": {"nickname": upline.get("nickname")} if upline else None,
            "balances": balances,
            "joined_at": member["created_at"],
        })


class BindAttempt(Stored):
    """One attempt to bind a member to an upline, bound or refused."""

    member_id: str | None
    upline_id: str | None
    previous_upline_id: str | None = None
    source: BindSource
    result: Literal["bound", "refused"]
    reason: str | None = Field(None, description="why it was refused")
    at: Time
    note: str | None = Field(None, description="the merchant's reason for a re-bind by hand")
    scene: str | None = Field(None, description="the scene of a scan that named no member")
    new_member: str | None = Field(None, description="the bound member's nickname then")


# --- money ---------------------------------------------------------------------------------------


class Withdrawal(Stored):
    member_id: str
    amount_fen: Fen
    fee_fen: Fen
    net_fen: Fen = Field(description="what is paid: the amount less the fee")
    method: WithdrawalMethod
    status: WithdrawalStatus
    note: str | None = Field(None, description="the reviewer's reason, or what happened to the payout")
    bill_state: BillState | None = Field(None, description="a WeChat-balance payout: its WeChat Pay transfer bill's "
                                                           "state")
    transfer_bill_no: str | None = Field(None, description="a WeChat-balance payout: WeChat Pay's bill number")
    reference: str | None = Field(None, description="a bank payout: the merchant's reference of the transfer")
    last_error: str | None = Field(None, description="why the last payout attempt did not get through (it is "
                                                     "tried again)")
    created_at: Time
    updated_at: Time


class TransferConfirmation(Answer):
    """What the mini-program passes to wx.requestMerchantTransfer, for the promoter to accept the payout."""

    mchId: str
    appId: str
    package: str
    openId: str


class MyWithdrawal(Withdrawal):
    """One of my withdrawals, with what accepting its payout in WeChat takes while it waits for me."""

    confirm: TransferConfirmation | None = Field(None, description="while waiting_user_confirm: the arguments of "
                                                                   "wx.requestMerchantTransfer")


class BankDetails(Answer):
    """A bank withdrawal's account, opened for the merchant (each reading is audited)."""

    account_name: str
    account_no: str
    bank_name: str


class LedgerEntry(Stored):
    """One movement of a member's money between buckets."""

    bucket: Bucket
    amount_fen: Fen = Field(description="negative when money leaves the bucket")
    kind: EntryKind
    ref: str = Field(description="the commission or withdrawal it belongs to")
    at: Time


class Commission(Answer):
    id: str = Field(description="<order_no>:<item index>:<level>")
    order_no: str
    item_index: int
    sku: str
    beneficiary_id: str
    level: int = Field(description="1 is the buyer's nearest upline")
    status: CommissionStatus
    amount_fen: Fen
    cancelled_fen: Fen = 0
    clawed_back_fen: Fen = 0
    net_fen: Fen = Field(description="the amount less cancellations and clawbacks")
    item_paid_fen: Fen
    refunded_fen: Fen = 0
    created_at: Time
    unfreeze_at: Time | None = None
    settled_at: Time | None = None

    @classmethod
    def from_document(cls, commission: dict) -> Self:
        return cls.model_validate({**commission, "id": commission["_id"], "net_fen": remaining_fen(commission)})


# --- orders --------------------------------------------------------------------------------------


class OrderedItem(Answer):
    sku: str
    title: str
    qty: int
    paid_fen: Fen
    category: str | None = None
    refunded_fen: Fen = 0


class RefundedItem(Answer):
    sku: str
    refund_fen: Fen


class OrderEvent(Answer):
    event_id: str
    type: EventType
    at: Time | None = Field(None, description="when it happened, as the shop said")
    items: list[RefundedItem] | None = Field(None, description="what a partial refund gave back")
    state: EventState
    outcome: str | None = Field(None, description="what applying it did")
    received_at: Time
    applied_at: Time | None = None

    @classmethod
    def from_document(cls, event: dict) -> Self:
        return cls.model_validate(event)


class ReceivedOrderEvent(OrderEvent):
    """An event as received: the worker applies it."""

    order_no: str
    duplicate: bool = Field(description="true when the same event was received before")

    @classmethod
    def from_received(cls, event: dict, created: bool) -> Self:
        return cls.model_validate({**event, "duplicate": not created})


class Order(Answer):
    order_no: str
    status: OrderStatus
    buyer: dict[str, str] = Field(description="how the shop named the buyer")
    buyer_id: str | None = Field(None, description="the member found as the buyer")
    upline_chain: list[str] = Field(default_factory=list,
                                    description="the buyer's uplines when the order was created, nearest first")
    items: list[OrderedItem]
    total_fen: Fen
    refunded_fen: Fen = 0
    commission_fen: Fen = 0
    paid_at: Time | None = None
    confirmed_at: Time | None = None
    unfreeze_at: Time | None = None
    closed_at: Time | None = None
    created_at: Time

    @classmethod
    def from_document(cls, order: dict) -> Self:
        return cls.model_validate({**order, "order_no": order["_id"]})


class OrderWithHistory(Order):
    """An order with its commissions and every event received, in arrival order."""

    commissions: list[Commission]
    events: list[OrderEvent]

    @classmethod
    def from_document(cls, order: dict) -> Self:
        return cls.model_validate({**order, "order_no": order["_id"],
                                   "commissions": [Commission.from_document(each) for each in order["commissions"]],
                                   "events": [OrderEvent.from_document(each) for each in order["events"]]})


# --- applications, posters, stats -----------------------------------------------------------------


class Application(Stored):
    """An application to promote; the applicant's phone stays sealed."""

    member_id: str
    name: str
    reason: str | None = None
    status: ApplicationStatus
    decision_note: str | None = None
    created_at: Time
    decided_at: Time | None = None


class PosterBackground(Answer):
    id: str = Field(description="templates.<id>.background_id in the poster settings")
    content_type: Literal["image/jpeg", "image/png"]
    width: int
    height: int
    bytes: int = Field(description="its size as stored, once shrunk to cover the canvas")
    uploaded_bytes: int | None = None
    created_at: Time

    @classmethod
    def from_document(cls, background: dict) -> Self:
        return cls.model_validate({**background, "id": background["_id"], "bytes": len(background["data"])})


class RankedPromoter(Answer):
    member_id: str
    orders: int
    paid_fen: Fen
    commission_fen: Fen
    commission_reversed_fen: Fen
    net_commission_fen: Fen
    refunded_fen: Fen
    new_direct_members: int


class PromoterRanking(Answer):
    model_config = ConfigDict(validate_by_name=True)

    first_day: date = Field(alias="from")
    last_day: date = Field(alias="to")
    sort: str
    items: list[RankedPromoter]


class SubscriptionCounts(Answer):
    consents: dict[str, int] = Field(description="template id -> unused consents: each allows one message")


class Session(Answer):
    token: str = Field(description="send it as `Authorization: Bearer <token>`")
    member: Me



class StoreHealth(Answer):
    """Each store: "ok", or "down: <what went wrong>"."""

    mongo: str
    redis: str
