"""The risk flags' shapes at the HTTP boundary, shared by the merchant API and the console."""

from __future__ import annotations

from datetime import datetime, timezone

from pydantic import Field

from distribution.records import Record, Text
from distribution.risk import Action, FlagStatus, Rule
from services.runtime import Runtime
from web.base import BaseHandler
from web.models import Answer, Stored, Time
from web.paging import Page, PageQuery, key_cursor


class FlagsQuery(PageQuery):
    status: FlagStatus | None = Field(None, description="only flags in this status")
    rule: Rule | None = Field(None, description="only flags of this rule")
    member_id: str | None = Field(None, max_length=64, description="only flags about this promoter")


class RejectedCommission(Answer):
    beneficiary_id: str
    item_index: int
    level: int
    amount_fen: int = Field(description="what the commission would have been, in fen: it was not posted")


class FlagEvidence(Answer):
    """What the rule saw; each rule fills its own fields, the others are null."""

    order_no: str | None = Field(None, description="self_referral: the order")
    buyer_id: str | None = Field(None, description="self_referral: the buyer")
    shared: list[str] | None = Field(None, description="self_referral: what buyer and promoter share: unionid, "
                                                       "phone, device, payer_openid, login_ip")
    second_account: bool | None = Field(None, description="self_referral: the buyer is bound to the promoter's code")
    origin: str | None = Field(None, description="bind_velocity: the device or address, as a keyed hash")
    binds: int | None = Field(None, description="bind_velocity: binds within the window")
    window_seconds: int | None = None
    paid_fen: int | None = Field(None, description="refund_rate: paid within the window")
    refunded_fen: int | None = Field(None, description="refund_rate: refunded within the window")
    window_days: int | None = None
    rate_bp: int | None = Field(None, description="refund_rate: the refunded share, in basis points")
    today_fen: int | None = Field(None, description="commission_spike: the day's commission")
    baseline_daily_fen: int | None = Field(None, description="commission_spike: the usual day's")
    multiple: int | None = None
    rank: int | None = Field(None, description="wechat_risk_rank: WeChat's rank, 0 to 4")
    paying_buyers: int | None = Field(None, description="unlinked_buyers: distinct paying buyers")
    linked_buyers: int | None = Field(None, description="unlinked_buyers: of them, linked by a self-referral flag")
    required: int | None = Field(None, description="unlinked_buyers: how many unlinked ones a first withdrawal "
                                                   "needs")
    commission_today_fen: int | None = Field(None, description="daily_commission_cap: earned today")
    cap_fen: int | None = None
    withdrawals_today: int | None = Field(None, description="daily_withdrawal_cap: this one included")
    cap: int | None = None


class RiskFlag(Stored):
    """A risk rule that fired, with its evidence (personal values only as keyed hashes) and what it holds."""

    rule: Rule
    action: Action = Field(description="what the merchant's settings made of it when it was raised")
    status: FlagStatus
    member_id: str = Field(description="the promoter it concerns")
    subject: str = Field(description="what it is about: an order and beneficiary, a withdrawal, a promoter's day...")
    evidence: FlagEvidence
    buyer_id: str | None = Field(None, description="a self-referral's buyer, linked to the promoter by it")
    held_commission_ids: list[str] = Field(description="commissions it keeps from settling while open")
    rejected_commissions: list[RejectedCommission] = Field(description="commissions it kept from being posted")
    withdrawal_id: str | None = Field(None, description="the withdrawal it concerns (held while open)")
    reason: str | None = Field(None, description="the merchant's reason for clearing or voiding it")
    created_at: Time
    decided_at: Time | None = None


class FlagDecision(Record):
    """Why the merchant decides as they do; kept on the flag and in the audit log."""

    reason: Text = Field(max_length=500, description="why the flag is cleared or voided")


async def decide_flag(handler: BaseHandler, flag_id: str, decision: str, reason: str) -> dict:
    """Clear (`decision` "clear") or void the flag for `reason`, and audit it; the flag as decided."""
    review = handler.runtime.risk_review
    decide = review.clear if decision == "clear" else review.void
    flag = await decide(flag_id, reason, datetime.now(timezone.utc))
    await handler.audit(f"risk_flag.{decision}", "risk_flag", flag_id, {"status": FlagStatus.OPEN.value},
                        {"status": flag["status"]}, reason)
    return flag


async def flag_page(runtime: Runtime, query: FlagsQuery) -> Page[RiskFlag]:
    """Newest first."""
    documents = await runtime.risk_review.page(query.status, query.rule, query.member_id, query.limit, query.cursor)
    return Page[RiskFlag].of(documents, query.limit, RiskFlag.from_document, key_cursor())
