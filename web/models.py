"""What the APIs answer, declared once: each model is both the JSON an endpoint writes and its schema in
/openapi.json. A model built from a stored document says so in `from_document`, the one way to show it."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

from distribution import preview
from distribution.applications import ApplicationStatus
from distribution.binding import BindSource, PromoterStatus
from distribution.chain_move import Role, stored_role
from distribution.commission import CommissionMode
from distribution.commission_rules import RuleKind
from distribution.ledger import Bucket, EntryKind
from distribution.names import mask_name
from distribution.orders import EventState, EventType, OrderStatus
from distribution.withdrawals import BillState, WithdrawalMethod, WithdrawalStatus
from services.commissions import CommissionStatus, remaining_fen
from services.dashboard import Overview, promoter_funnel
from services.members import Listed
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


def team_fields(member: dict) -> dict:
    """The chain-move mode's fields of a stored member: its role as that mode reads it (one who joined while the
    mode was off has none stored: a boss without an upline, an agent with one), and team_size for a boss."""
    role = stored_role(member.get("role"), member.get("upline_id"))
    owner_ids = member.get("owner_ids") or []
    return {"role": role, "team_owner_id": owner_ids[0] if owner_ids else None,
            "referral_count": member.get("referral_count", 0),
            "team_size": member.get("team_size", 0) if role is Role.BOSS else None}


class TeamRelation(Answer):
    """Where a member stands in the chain-move mode (链动2+1); members who joined while it was off read as bosses
    without an upline and agents with one, with no referrals and no team owner."""

    role: Role = Field(description="agent (代理) or boss (老板): an agent becomes a boss once it has invited the "
                                   "settings' required_directs members")
    team_owner_id: str | None = Field(None, description="the boss (or inviter) whose team the member is in: its "
                                                        "inviter, or the boss above it the position passed it up to")
    referral_count: int = Field(0, description="the positions its referrals have used, 1 first; never given back")
    team_size: int | None = Field(None, description="for a boss: the members whose team-owner chain reaches it "
                                                    "(counted by the worker within seconds); null for an agent")


class Member(Stored, TeamRelation):
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
    grade: str | None = Field(None, description="the promoter grade they hold, if any")
    created_at: Time | None = None

    @classmethod
    def from_document(cls, document: dict) -> Self:
        return cls.model_validate({**document, "id": document["_id"], **team_fields(document)})


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


class ListedMember(Member):
    """A member as the member search lists them: with their money, what they brought, and their upline."""

    phone: str | None = Field(None, description="masked: 138****5678")
    upline_nickname: str | None = None
    balances: Balances
    withdrawn_fen: Fen = Field(0, description="paid out to them so far, fees included")
    orders_brought: int = Field(0, description="orders that earned them a commission")
    sales_brought_fen: Fen = Field(0, description="the paid totals of those orders, as paid")
    settled_sales_fen: Fen = Field(0, description="sales at any of their levels whose commission settled, net of "
                                                  "refunds: what grades judge their team's sales by")

    @classmethod
    def from_listed(cls, listed: Listed, sealer: Sealer) -> Self:
        member, totals = listed.member, listed.totals
        sealed_phone = member.get("phone_sealed")
        return cls.model_validate({
            **member,
            "id": member["_id"],
            "grade": totals.get("grade", member.get("grade")),
            "phone": mask_phone(sealer.open(sealed_phone)) if sealed_phone else None,
            "upline_nickname": (listed.upline or {}).get("nickname"),
            "balances": listed.balances,
            "withdrawn_fen": totals.get("withdrawn_fen", 0),
            "orders_brought": totals.get("orders_brought", 0),
            "sales_brought_fen": totals.get("sales_brought_fen", 0),
            "settled_sales_fen": totals.get("team_settled_sales_fen", 0),
            **team_fields(member),
        })


class Me(TeamRelation):
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
            **team_fields(member),
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
    position: int | None = Field(None, description="chain-move mode: the position among the inviter's referrals "
                                                   "the bind used, 1 first")
    passed_up: bool | None = Field(None, description="chain-move mode: whether the position left the member to the "
                                                     "nearest boss above its inviter")
    passed_to: str | None = Field(None, description="chain-move mode: that boss, when passed up and one was above")
    team_owner_id: str | None = Field(None, description="chain-move mode: the member's team owner after the bind")


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
    statement_id: str | None = Field(None, description="a settlement made by a statement (结算单): which one")
    at: Time


class Commission(Answer):
    id: str = Field(description="<order_no>:<item index>:<level>")
    order_no: str
    item_index: int
    sku: str
    beneficiary_id: str
    level: int = Field(description="level mode: 1 is the buyer's nearest beneficiary; chain-move mode: the reward's "
                                   "kind, 1 direct, 2 team, 3 peer (see `reward`)")
    mode: CommissionMode = Field(CommissionMode.LEVEL, description="the rules the order was paid under")
    reward: Literal["direct", "team", "peer"] | None = Field(
        None, description="chain-move mode: direct (the buyer's recruiter), team (the nearest boss on the buyer's "
                          "team-owner chain) or peer (平级奖, the next boss above); null in the level mode")
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


class PreviewedCommission(Answer):
    level: int = Field(description="1 is the nearest beneficiary")
    beneficiary: str = Field(description="`buyer` (a self-purchase) or `upline_<n>`, the buyer's upline n steps up")
    grade: str | None
    rate_bp: int | None = Field(description="the rate that applies, in basis points; null for a fixed amount")
    fixed_fen_per_unit: int | None = Field(description="the fixed amount per unit that applies; null for a rate")
    wanted_fen: Fen = Field(description="what the rule gives before the cap")
    amount_fen: Fen = Field(description="what the beneficiary earns: wanted_fen as far as the cap leaves room")


class CommissionPreview(Answer):
    """Who would earn what on the item, level by level, under the candidate rules."""

    paid_fen: Fen
    cap_fen: Fen = Field(description="cap_bp of paid_fen: the most all levels together earn")
    total_fen: Fen
    levels: list[PreviewedCommission] = Field(description="one per beneficiary the rules reach, nearest first, "
                                                          "earning or not")

    @classmethod
    def of(cls, previewed: preview.CommissionPreview) -> Self:
        return cls(paid_fen=previewed.paid_fen, cap_fen=previewed.cap_fen, total_fen=previewed.total_fen, levels=[
            PreviewedCommission(
                level=line.level, beneficiary=line.beneficiary, grade=line.grade, wanted_fen=line.wanted_fen,
                amount_fen=line.amount_fen,
                rate_bp=line.rule_value if line.rule_kind is RuleKind.RATE_BP else None,
                fixed_fen_per_unit=line.rule_value if line.rule_kind is RuleKind.FIXED_FEN_PER_UNIT else None,
            ) for line in previewed.lines])


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


class RewardBeneficiaries(Answer):
    direct_id: str | None = Field(None, description="the buyer's recruiter (its upline)")
    team_id: str | None = Field(None, description="the nearest boss on the buyer's team-owner chain")
    peer_id: str | None = Field(None, description="the next boss above the team boss (平级奖)")


class OrderCheckout(Answer):
    """How an order placed in the mini-program is paid."""

    out_trade_no: str = Field(description="the order's number at WeChat Pay")
    transaction_id: str | None = Field(None, description="WeChat Pay's payment, once paid")
    payment_problem: str | None = Field(None, description="a payment WeChat Pay told of that does not match the "
                                                          "order (amount, merchant, app), not applied: the "
                                                          "merchant settles it with the buyer")
    close_at: Time | None = Field(None, description="while unpaid: when it is closed and its stock released")
    confirm_at: Time | None = Field(None, description="once paid: when receipt is confirmed for the buyer, unless "
                                                      "they confirm first")


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
    commission_mode: CommissionMode | None = Field(
        None, description="the rules the payment put the order under; null before it is paid (and on orders paid "
                          "before the mode was kept, all under the level rules)")
    reward_beneficiaries: RewardBeneficiaries | None = Field(
        None, description="chain-move mode: who earns on the order, as the members stood when it was paid")
    paid_at: Time | None = None
    confirmed_at: Time | None = None
    unfreeze_at: Time | None = None
    closed_at: Time | None = None
    created_at: Time
    checkout: OrderCheckout | None = Field(None, description="orders placed in the mini-program only: how they "
                                                             "are paid through WeChat Pay")

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


class OrderRefundLine(Answer):
    item_index: int
    sku: str
    qty: int
    refund_fen: Fen


class OrderRefund(Stored):
    """A refund of a mini-program order through WeChat Pay; `id` is its out_refund_no."""

    order_no: str
    lines: list[OrderRefundLine]
    refund_fen: Fen = Field(description="what goes back: the items' share of what was paid")
    reason: str
    status: Literal["PROCESSING", "SUCCESS", "CLOSED", "ABNORMAL", "REFUSED"] = Field(
        description="PROCESSING until WeChat Pay says; SUCCESS (the order's refund applied, the items back in "
                    "stock), CLOSED or REFUSED (nothing given back: the items may be refunded again), ABNORMAL "
                    "(WeChat Pay could not pay the buyer back: the merchant sees to it)")
    refund_id: str | None = Field(None, description="WeChat Pay's id of the refund")
    error: str | None = Field(None, description="what WeChat Pay last answered, when it refused or did not answer")
    created_at: Time
    success_time: Time | None = None


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


class InstalledButton(Answer):
    """A button of the menu WeChat holds, in WeChat's fields: it may have been set outside this server (in WeChat's
    own admin pages), with types and fields the oa_menu settings do not use."""

    type: str | None = Field(None, description="null on a button with sub-buttons")
    name: str
    key: str | None = None
    url: str | None = None
    appid: str | None = None
    pagepath: str | None = None
    media_id: str | None = None
    article_id: str | None = None
    sub_button: list[InstalledButton] = []


class InstalledMenu(Answer):
    """The official account's menu as WeChat holds it."""

    installed: bool = Field(description="false: the account has no menu")
    button: list[InstalledButton]


RANKED_WHEN = ("now, or, for today, the last 7 or the last 30 days, up to a few minutes ago by the worker, which "
               "ranks those every minute")


class RankedPromoter(Answer):
    member_id: str
    nickname: str | None
    orders: int = Field(description="orders that earned the promoter a commission")
    paid_fen: Fen = Field(description="those orders' paid totals")
    commission_fen: Fen
    commission_reversed_fen: Fen
    net_commission_fen: Fen
    refunded_fen: Fen
    new_direct_members: int = Field(description="members bound to the promoter: the promoter's binds")
    scans: int = Field(description="the promoter's codes scanned")
    visits: int = Field(description="the promoter's share links opened")
    buyers: int = Field(description="members bound to the promoter who paid their first order")
    sales_fen: Fen = Field(description="paid totals of orders whose buyer was bound to the promoter")


class FunnelCounts(Answer):
    """Scans and share-link visits -> binds -> buyers with a paid order -> sales."""

    scans: int = Field(description="promoters' codes scanned: an official-account code followed or scanned, a "
                                   "mini-program code opened")
    visits: int = Field(description="promoters' share links opened")
    binds: int = Field(description="members bound to a promoter")
    buyers: int = Field(description="members bound to a promoter who paid their first order (each member once)")
    sales_fen: Fen = Field(description="paid totals of orders whose buyer was bound to a promoter when ordering, "
                                       "as paid (refunds are not taken off)")


class PromoterFunnel(FunnelCounts):
    member_id: str
    nickname: str | None


class TemplateFunnel(FunnelCounts):
    template: str = Field(description="the poster template whose code or link brought them")


class DayTotals(Answer):
    day: date
    sales_fen: Fen
    commission_fen: Fen = Field(description="commissions earned, net of refunds")
    binds: int
    new_promoters: int


class StatsOverview(Answer):
    """The dashboard's numbers over a range of China calendar days."""

    model_config = ConfigDict(validate_by_name=True)

    first_day: date = Field(alias="from")
    last_day: date = Field(alias="to")
    sales_fen: Fen = Field(description="paid totals of orders whose buyer was bound to a promoter when ordering, "
                                       "as paid (refunds are not taken off)")
    commission_fen: Fen = Field(description="commissions earned in the range, net of refunds")
    frozen_fen: Fen = Field(description="commissions not settled yet, all promoters', at the end of the range")
    withdrawable_fen: Fen = Field(description="settled commissions not withdrawn, all promoters' (less what "
                                              "clawbacks left owing), at the end of the range")
    paid_out_fen: Fen = Field(description="withdrawals paid to promoters in the range, net of fees")
    new_promoters: int = Field(description="members whose first member was bound to them in the range")
    binds: int = Field(description="members bound to a promoter in the range")
    pending_applications: int = Field(description="applications to promote awaiting review, now")
    pending_withdrawals: int = Field(description="withdrawals awaiting review, now")
    funnel: FunnelCounts = Field(description="the shop's funnel over the range")
    trend: list[DayTotals] = Field(description="each day of the range, oldest first")
    top_promoters: list[RankedPromoter] = Field(description="the promoters who earned most, net of refunds")
    promoter_funnels: list[PromoterFunnel] = Field(description="the promoters who sold most, with their funnels")
    template_funnels: list[TemplateFunnel] = Field(description="each poster template's funnel, most sales first")
    rankings_computed_at: Time = Field(description="when top_promoters and promoter_funnels were ranked: "
                                                   + RANKED_WHEN)

    @classmethod
    def of(cls, overview: Overview) -> Self:
        return cls(
            first_day=overview.days.first, last_day=overview.days.last, sales_fen=overview.sales_fen,
            commission_fen=overview.commission_fen, frozen_fen=overview.frozen_fen,
            withdrawable_fen=overview.withdrawable_fen, paid_out_fen=overview.paid_out_fen,
            new_promoters=overview.new_promoters, binds=overview.binds,
            pending_applications=overview.pending_applications, pending_withdrawals=overview.pending_withdrawals,
            funnel=FunnelCounts(**asdict(overview.funnel)),
            trend=[DayTotals.model_validate(day, from_attributes=True) for day in overview.trend],
            top_promoters=[RankedPromoter.model_validate(each, from_attributes=True)
                           for each in overview.top_promoters],
            promoter_funnels=[PromoterFunnel(member_id=each.member_id, nickname=each.nickname,
                                             **asdict(promoter_funnel(each))) for each in overview.promoter_funnels],
            template_funnels=[TemplateFunnel(template=each.template_id, **asdict(each.funnel))
                              for each in overview.template_funnels],
            rankings_computed_at=overview.rankings_computed_at,
        )


class PromoterRanking(Answer):
    model_config = ConfigDict(validate_by_name=True)

    first_day: date = Field(alias="from")
    last_day: date = Field(alias="to")
    sort: str
    items: list[RankedPromoter]
    computed_at: Time = Field(description="when the promoters were ranked: " + RANKED_WHEN)


class SubscriptionCounts(Answer):
    consents: dict[str, int] = Field(description="template id -> unused consents: each allows one message")


class Session(Answer):
    token: str = Field(description="send it as `Authorization: Bearer <token>`")
    member: Me



class StoreHealth(Answer):
    """Each store: "ok", or "down: <what went wrong>"."""

    mongo: str
    redis: str
