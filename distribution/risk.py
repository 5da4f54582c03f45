"""Risk controls (风控): the merchant's rules, and what each rule makes of its evidence.

Pure: the services gather the evidence when its event happens (a payment, a refund, a bind, a withdrawal
request) and ask the rule here; a rule that fires gives a `Signal`, which the services record as a flag and act
on as the merchant chose for that rule (`settings/risk`):

- `allow`: nothing is recorded;
- `flag`: recorded, listed for review, the merchant alerted;
- `hold`: recorded, and the money it concerns waits for the merchant: the commission is posted but does not
  settle, a withdrawal waits for review, until the flag is cleared (released) or voided (the commission
  cancelled, the withdrawal rejected);
- `reject`: recorded, and the bind is refused (`risk:<rule>`) or the commission is not posted.

The withdrawal checks (the daily caps and the minimum of paying buyers not linked to the promoter) always
hold: a withdrawal is money already earned, and only the merchant's review may refuse it.

Personal evidence (a phone, a device id, an address) reaches this module only as keyed hashes: two members
share one when their hashes are equal, and a flag never holds the value itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any

from pydantic import ConfigDict, Field

from distribution.money import BASIS_POINTS, BasisPoints, Fen
from distribution.records import Integer, Record

MAX_BINDS = 100_000
MAX_WINDOW_SECONDS = 86_400
MAX_WINDOW_DAYS = 90
MAX_MULTIPLE = 1_000
MAX_BUYERS = 10_000
MAX_DAILY_WITHDRAWALS = 1_000


class Action(StrEnum):
    ALLOW = "allow"
    FLAG = "flag"
    HOLD = "hold"
    REJECT = "reject"


class Rule(StrEnum):
    SELF_REFERRAL = "self_referral"
    BIND_VELOCITY = "bind_velocity"
    REFUND_RATE = "refund_rate"
    COMMISSION_SPIKE = "commission_spike"
    WECHAT_RISK_RANK = "wechat_risk_rank"
    UNLINKED_BUYERS = "unlinked_buyers"
    DAILY_COMMISSION_CAP = "daily_commission_cap"
    DAILY_WITHDRAWAL_CAP = "daily_withdrawal_cap"


# Each rule as the merchant reads it: in the alert a flag sends and in the console.
RULE_NAMES = {
    Rule.SELF_REFERRAL: "自买自返", Rule.BIND_VELOCITY: "频繁绑定", Rule.REFUND_RATE: "退款率过高",
    Rule.COMMISSION_SPIKE: "佣金异常激增", Rule.WECHAT_RISK_RANK: "微信风险等级", Rule.UNLINKED_BUYERS: "独立买家不足",
    Rule.DAILY_COMMISSION_CAP: "日佣金超限", Rule.DAILY_WITHDRAWAL_CAP: "日提现超次",
}


class FlagStatus(StrEnum):
    OPEN = "open"
    CLEARED = "cleared"  # the merchant found it honest: what it held is released
    VOIDED = "voided"  # the merchant found it fraud: what it held is cancelled or rejected


class SelfReferral(Record):
    """The buyer and a beneficiary of their order are one person: they share a unionid, a phone, a device or
    the payer's openid; or the buyer is bound to the beneficiary's own code and shares any of those, or the
    address they logged in from."""

    action: Action = Field(Action.FLAG, description="What a match does to the beneficiary's commission.")


class BindVelocity(Record):
    """Many binds to one promoter from one address or device within a window."""

    action: Action = Field(Action.FLAG, description="What happens to binds past the limit (hold: flagged, and the "
                                                    "promoter's withdrawals wait for review while it is open).")
    max_binds: Annotated[Integer, Field(ge=1, le=MAX_BINDS)] = Field(
        10, description="How many binds to one promoter from one address or device the window allows.")
    window_seconds: Annotated[Integer, Field(ge=1, le=MAX_WINDOW_SECONDS)] = Field(
        3_600, description="The sliding window, in seconds.")


class RefundRate(Record):
    """A promoter's orders refunded over a window above a share of what they paid."""

    action: Action = Field(Action.FLAG, description="What a promoter over the rate gets (hold: their withdrawals "
                                                    "wait for review while the flag is open; reject acts as hold).")
    window_days: Annotated[Integer, Field(ge=1, le=MAX_WINDOW_DAYS)] = Field(
        30, description="Over how many days (China), today included.")
    max_refund_bp: Annotated[BasisPoints, Field(le=BASIS_POINTS)] = Field(
        3_000, description="The largest refunded share of the paid amount, in basis points (3000 = 30%).")
    min_paid_fen: Annotated[Fen, Field(ge=1)] = Field(
        10_000, description="Below this much paid in the window the rate says nothing yet.")


class CommissionSpike(Record):
    """A promoter's commission of one day far above their own trailing daily average."""

    action: Action = Field(Action.FLAG, description="What the commissions that make the spike get.")
    baseline_days: Annotated[Integer, Field(ge=1, le=MAX_WINDOW_DAYS)] = Field(
        14, description="How many days before today make the baseline.")
    multiple: Annotated[Integer, Field(ge=2, le=MAX_MULTIPLE)] = Field(
        5, description="A day above this many times the baseline's daily average is a spike.")
    min_fen: Annotated[Fen, Field(ge=1)] = Field(
        10_000, description="A day below this much commission is never a spike.")


class WeChatRiskRank(Record):
    """WeChat's own judgement of a user (wxa/getuserriskrank, scene 营销作弊), asked on binds and on a first
    withdrawal. A failed or slow answer is no signal."""

    action: Action = Field(Action.FLAG, description="What a risky user's bind or first withdrawal gets (a "
                                                    "withdrawal is held at most).")
    min_rank: Annotated[Integer, Field(ge=1, le=4)] = Field(
        3, description="WeChat's rank (0 no risk to 4 highest) from which a user counts as risky.")


class RiskSettings(Record):
    """The merchant's risk controls: per rule its action and thresholds; the daily caps and the minimum of
    unlinked paying buyers, which hold withdrawals for review."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "self_referral": {"action": "hold"},
        "bind_velocity": {"action": "reject", "max_binds": 10, "window_seconds": 3600},
        "daily_commission_cap_fen": 500_000, "daily_withdrawal_cap": 2, "min_unlinked_paying_buyers": 3,
    }]})

    self_referral: SelfReferral = Field(SelfReferral(), description="Buying from oneself through a beneficiary.")
    bind_velocity: BindVelocity = Field(BindVelocity(), description="Bursts of binds from one address or device.")
    refund_rate: RefundRate = Field(RefundRate(), description="A promoter's refunded share.")
    commission_spike: CommissionSpike = Field(CommissionSpike(), description="A day far above the usual.")
    wechat_risk_rank: WeChatRiskRank = Field(WeChatRiskRank(), description="WeChat's risk rank of the user.")
    daily_commission_cap_fen: Annotated[Fen, Field(ge=1)] | None = Field(
        None, description="A promoter who earned more than this in commission today has their withdrawals held "
                          "for review. null: no cap.")
    daily_withdrawal_cap: Annotated[Integer, Field(ge=1, le=MAX_DAILY_WITHDRAWALS)] | None = Field(
        None, description="A promoter's withdrawals past this many in a day are held for review. null: no cap.")
    min_unlinked_paying_buyers: Annotated[Integer, Field(ge=0, le=MAX_BUYERS)] | None = Field(
        None, description="Before a promoter's first withdrawal, how many of their paying buyers must not be "
                          "linked to them by a self-referral flag; fewer: the withdrawal is held. null: as many "
                          "as the withdrawal rules' min_distinct_paying_buyers.")


@dataclass(frozen=True)
class Signal:
    """A rule that fired: what it concerns (`subject`, unique per rule: a repeated event flags once), whom, the
    evidence, and the merchant's action for it."""

    rule: Rule
    action: Action
    member_id: str  # the promoter it concerns
    subject: str
    evidence: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.rule.value}:{self.subject}"

    @property
    def holds(self) -> bool:
        return self.action is Action.HOLD

    @property
    def rejects(self) -> bool:
        return self.action is Action.REJECT


def _signal(action: Action, rule: Rule, member_id: str, subject: str, evidence: Mapping[str, Any]) -> Signal | None:
    return None if action is Action.ALLOW else Signal(rule, action, member_id, subject, dict(evidence))


# --- self-referral -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    """What may tell that two members are one person; personal values as keyed hashes."""

    member_id: str
    upline_id: str | None = None
    unionid: str | None = None
    phone_hash: str | None = None
    device_hash: str | None = None
    login_ip_hash: str | None = None
    openids: frozenset[str] = frozenset()


def shared_signals(buyer: Identity, beneficiary: Identity, payer_openid: str | None) -> list[str]:
    """The names of what the buyer (or the order's payer) shares with the beneficiary, in a fixed order."""
    shared = [name for name, mine, theirs in (
        ("unionid", buyer.unionid, beneficiary.unionid),
        ("phone", buyer.phone_hash, beneficiary.phone_hash),
        ("device", buyer.device_hash, beneficiary.device_hash),
    ) if mine and mine == theirs]
    if payer_openid and payer_openid in beneficiary.openids:
        shared.append("payer_openid")
    return shared


def self_referral(settings: SelfReferral, order_no: str, buyer: Identity, beneficiary: Identity,
                  payer_openid: str | None) -> Signal | None:
    """Whether `beneficiary` earns on an order they bought themselves through `buyer`. A buyer bound to the
    beneficiary's own code (a second account) also matches on the address both last logged in from. A buyer
    who is the beneficiary is self-purchase, which the commission rules decide."""
    if buyer.member_id == beneficiary.member_id:
        return None
    shared = shared_signals(buyer, beneficiary, payer_openid)
    second_account = buyer.upline_id == beneficiary.member_id
    if second_account and buyer.login_ip_hash and buyer.login_ip_hash == beneficiary.login_ip_hash:
        shared.append("login_ip")
    if not shared:
        return None
    evidence = {"order_no": order_no, "buyer_id": buyer.member_id, "shared": shared,
                "second_account": second_account}
    return _signal(settings.action, Rule.SELF_REFERRAL, beneficiary.member_id,
                   f"{order_no}:{beneficiary.member_id}", evidence)


# --- bind velocity ---------------------------------------------------------------------------------------------


def bind_velocity(settings: BindVelocity, upline_id: str, origin: str, binds_in_window: int,
                  window_started: int) -> Signal | None:
    """Whether `binds_in_window` binds (this one included) to `upline_id` from one `origin` (a hashed address
    or device) are too many. One flag per promoter, origin and window (`window_started`, in seconds)."""
    if binds_in_window <= settings.max_binds:
        return None
    evidence = {"origin": origin, "binds": binds_in_window, "window_seconds": settings.window_seconds}
    return _signal(settings.action, Rule.BIND_VELOCITY, upline_id, f"{upline_id}:{origin}:{window_started}",
                   evidence)


# --- refund rate -----------------------------------------------------------------------------------------------


def refund_rate(settings: RefundRate, member_id: str, day: str, paid_fen: int, refunded_fen: int) -> Signal | None:
    """Whether a promoter's `refunded_fen` of `paid_fen` over the window is above the merchant's share. One flag
    per promoter and day."""
    if paid_fen < settings.min_paid_fen or refunded_fen * BASIS_POINTS <= settings.max_refund_bp * paid_fen:
        return None
    evidence = {"paid_fen": paid_fen, "refunded_fen": refunded_fen, "window_days": settings.window_days,
                "rate_bp": refunded_fen * BASIS_POINTS // paid_fen}
    return _signal(settings.action, Rule.REFUND_RATE, member_id, f"{member_id}:{day}", evidence)


# --- commission spike ------------------------------------------------------------------------------------------


def commission_spike(settings: CommissionSpike, member_id: str, day: str, today_fen: int,
                     baseline_fen: Sequence[int]) -> Signal | None:
    """Whether `today_fen` (this posting included) is far above the promoter's daily average over the
    `baseline_days` before today (`baseline_fen`: those days' commissions, missing days left out). One flag per
    promoter and day."""
    if today_fen < settings.min_fen:
        return None
    baseline_total = sum(baseline_fen)
    if today_fen * settings.baseline_days <= settings.multiple * baseline_total:
        return None
    evidence = {"today_fen": today_fen, "baseline_daily_fen": baseline_total // settings.baseline_days,
                "multiple": settings.multiple}
    return _signal(settings.action, Rule.COMMISSION_SPIKE, member_id, f"{member_id}:{day}", evidence)


# --- WeChat's risk rank ----------------------------------------------------------------------------------------


def wechat_risk_rank(settings: WeChatRiskRank, member_id: str, subject: str, rank: int | None) -> Signal | None:
    """Whether WeChat ranks the user risky; `rank` None (no answer) is no signal."""
    if rank is None or rank < settings.min_rank:
        return None
    return _signal(settings.action, Rule.WECHAT_RISK_RANK, member_id, subject, {"rank": rank})


# --- withdrawals -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WithdrawalEvidence:
    withdrawal_id: str
    member_id: str
    is_first: bool
    paying_buyers: int
    linked_buyers: int  # of those, linked to the promoter by a self-referral flag not cleared
    min_distinct_paying_buyers: int  # the withdrawal rules' minimum
    commission_today_fen: int
    withdrawals_today: int  # requested before this one


def withdrawal_holds(settings: RiskSettings, evidence: WithdrawalEvidence) -> list[Signal]:
    """The caps and the buyer minimum a withdrawal request is past: each holds it for review."""
    signals = []
    subject, member_id = evidence.withdrawal_id, evidence.member_id
    minimum = settings.min_unlinked_paying_buyers
    if minimum is None:
        minimum = evidence.min_distinct_paying_buyers
    unlinked = evidence.paying_buyers - evidence.linked_buyers
    if evidence.is_first and unlinked < minimum:
        signals.append(Signal(Rule.UNLINKED_BUYERS, Action.HOLD, member_id, subject, {
            "paying_buyers": evidence.paying_buyers, "linked_buyers": evidence.linked_buyers, "required": minimum}))
    cap_fen = settings.daily_commission_cap_fen
    if cap_fen is not None and evidence.commission_today_fen > cap_fen:
        signals.append(Signal(Rule.DAILY_COMMISSION_CAP, Action.HOLD, member_id, subject, {
            "commission_today_fen": evidence.commission_today_fen, "cap_fen": cap_fen}))
    cap = settings.daily_withdrawal_cap
    if cap is not None and evidence.withdrawals_today + 1 > cap:
        signals.append(Signal(Rule.DAILY_WITHDRAWAL_CAP, Action.HOLD, member_id, subject, {
            "withdrawals_today": evidence.withdrawals_today + 1, "cap": cap}))
    return signals


def at_most_hold(signal: Signal | None) -> Signal | None:
    """Money already earned is never refused by a rule: a reject holds it for the merchant instead."""
    if signal is not None and signal.rejects:
        return Signal(signal.rule, Action.HOLD, signal.member_id, signal.subject, signal.evidence)
    return signal
