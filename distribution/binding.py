"""Binding an upline (绑定上级): the merchant's rules and the decision for one attempt.

`decide_bind` is pure: the service loads both members, asks, and writes a
`Bind` with one conditional update that requires the member's relation to be
exactly what was read (`Bind.expected_ancestor_ids` and
`Bind.expected_bound_at`). Concurrent attempts on one member therefore bind
at most one of them; a loser re-reads and asks again.

The decision may be taken on documents read a moment ago (the caller's
member, a recently read upline): the write must also find the upline as the
decision relied on (its chain, status and, if it qualified by spending,
that spending), so a stale read can only cost a retry.

That condition cannot guard the cycle check, which reads the upline's chain:
A binding under B while B binds under A would both pass. The service must
close that race itself (serialise binds, or re-read the upline's chain after
the write and undo when it now holds the member).

All datetimes must follow one convention: timezone-aware UTC (the MongoDB client is tz_aware).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated

from pydantic import ConfigDict, Field

from distribution.money import Fen
from distribution.records import Days, Integer, Record


class UplineEligibility(StrEnum):
    EVERYONE = "everyone"
    REVIEWED = "reviewed"  # the member applied and the merchant approved
    SPEND_THRESHOLD = "spend_threshold"  # the member has spent at least `spend_threshold_fen`
    APPOINTED = "appointed"  # the merchant appointed the member


class BindMode(StrEnum):
    FIRST_BIND = "first_bind"  # the first upline stays for good
    NEW_MEMBERS_ONLY = "new_members_only"  # only a member who has just arrived can be bound
    OVERRIDE = "override"  # every valid attempt replaces the upline
    EXPIRING = "expiring"  # a binding may be replaced once it is `bind_expiry_days` old


class BindSource(StrEnum):
    OA_SCAN = "oa_scan"
    MINIAPP_SCENE = "miniapp_scene"
    SHARE_LINK = "share_link"
    ADMIN = "admin"  # a merchant re-binds by hand: every rule applies except the bind mode


class PromoterStatus(StrEnum):
    NONE = "none"
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    APPOINTED = "appointed"


class RefusalReason(StrEnum):
    UNKNOWN_UPLINE = "unknown_upline"
    SELF = "self"
    CYCLE = "cycle"
    FROZEN_MEMBER = "frozen_member"
    FROZEN_UPLINE = "frozen_upline"
    INELIGIBLE_UPLINE = "ineligible_upline"
    SAME_UPLINE = "same_upline"
    ALREADY_BOUND = "already_bound"
    NOT_NEW_MEMBER = "not_new_member"


# Longer than a month, "new" would stop meaning anything.
MAX_NEW_MEMBER_WINDOW_SECONDS = 30 * 24 * 3600


class BindingSettings(Record):
    """The merchant's binding rules: who may be an upline, and when a member's upline may change."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "upline_eligibility": "spend_threshold", "spend_threshold_fen": 9_900, "bind_mode": "expiring",
        "new_member_window_seconds": 0, "bind_expiry_days": 30,
    }]})

    upline_eligibility: UplineEligibility = Field(
        UplineEligibility.EVERYONE,
        description="Who may be an upline: everyone, members the merchant approved (reviewed), members who have "
                    "spent spend_threshold_fen (spend_threshold), or only appointed members. Appointed members "
                    "qualify under every rule.",
    )
    spend_threshold_fen: Fen = Field(
        0, description="Under spend_threshold: what a member must have spent, in fen, to become an upline: what "
                       "their paid orders still hold, refunds taken off.")
    bind_mode: BindMode = Field(
        BindMode.FIRST_BIND,
        description="When a bound member's upline may change: never (first_bind), only a member who has just "
                    "arrived is bound (new_members_only), at every valid attempt (override), or once the binding "
                    "is bind_expiry_days old (expiring).",
    )
    new_member_window_seconds: Annotated[Integer, Field(ge=0, le=MAX_NEW_MEMBER_WINDOW_SECONDS)] = Field(
        0,
        description="Under new_members_only: how many seconds after arriving a member still counts as new. 0: only "
                    "a member created by the very scan, follow or login that carries the invitation.",
    )
    bind_expiry_days: Annotated[Days, Field(ge=1)] = Field(
        30, description="Under expiring: days after which a binding may be replaced by a new invitation.")


@dataclass(frozen=True)
class MemberSnapshot:
    """What the binding rules need to know of a member, as read before deciding."""

    id: str
    created_at: datetime
    ancestor_ids: tuple[str, ...] = ()  # nearest first: the upline, its upline, ...
    bound_at: datetime | None = None
    frozen: bool = False
    promoter_status: PromoterStatus = PromoterStatus.NONE
    spent_fen: int = 0  # what its paid orders still hold (read only where the rule for uplines is spending)

    def __post_init__(self) -> None:
        # Services pass lists straight from MongoDB; a tuple keeps the snapshot immutable and comparable.
        object.__setattr__(self, "ancestor_ids", tuple(self.ancestor_ids))
        if self.ancestor_ids and self.bound_at is None:
            raise ValueError(f"member {self.id} has an upline but no bound_at")

    @property
    def upline_id(self) -> str | None:
        return self.ancestor_ids[0] if self.ancestor_ids else None


@dataclass(frozen=True)
class Bind:
    """Write this relation, on condition that the stored one is still the expected one.

    The conditional update must match `ancestor_ids == expected_ancestor_ids`
    (hence the upline too) and `bound_at == expected_bound_at`; matching the
    ancestors as well as the upline matters because moving an ancestor's
    subtree rewrites them without touching the upline. When
    `expected_ancestor_ids` is not empty this is a re-bind and the member's
    subtree moves with it (see `distribution.tree`).
    """

    member_id: str
    upline_id: str
    ancestor_ids: tuple[str, ...]
    bound_at: datetime
    source: BindSource
    expected_ancestor_ids: tuple[str, ...]
    expected_bound_at: datetime | None
    # What made the upline eligible, which the write must find unchanged: its status. Spending that qualified it
    # is taken as read: a refund landing between the read and the write is no different from one just after the
    # bind, which leaves the bind in place.
    upline_status: PromoterStatus = PromoterStatus.NONE

    @property
    def expected_upline_id(self) -> str | None:
        return self.expected_ancestor_ids[0] if self.expected_ancestor_ids else None

    @property
    def is_rebind(self) -> bool:
        return bool(self.expected_ancestor_ids)


@dataclass(frozen=True)
class Refusal:
    reason: RefusalReason


BindDecision = Bind | Refusal


def decide_bind(
    member: MemberSnapshot,
    upline: MemberSnapshot | None,
    settings: BindingSettings,
    now: datetime,
    source: BindSource,
    created_by_this_push: bool,
) -> BindDecision:
    """Whether `member` may be bound to `upline` now, and what to write if so.

    `upline` is None when the scene named no existing member.
    `created_by_this_push` is true when the member was created by the very push
    or request that carries the scene (a first follow, a first mini-program
    login). Reasons are checked in the order of `RefusalReason`, so an attempt
    that breaks several rules always gets the same one.
    """
    if upline is None:
        return Refusal(RefusalReason.UNKNOWN_UPLINE)
    if upline.id == member.id:
        return Refusal(RefusalReason.SELF)
    if member.id in upline.ancestor_ids:
        return Refusal(RefusalReason.CYCLE)
    if member.frozen:
        return Refusal(RefusalReason.FROZEN_MEMBER)
    if upline.frozen:
        return Refusal(RefusalReason.FROZEN_UPLINE)
    if not may_be_upline(upline, settings):
        return Refusal(RefusalReason.INELIGIBLE_UPLINE)
    if member.upline_id == upline.id:
        return Refusal(RefusalReason.SAME_UPLINE)
    if source is not BindSource.ADMIN:
        refused_by_mode = _mode_refusal(member, settings, now, created_by_this_push)
        if refused_by_mode is not None:
            return Refusal(refused_by_mode)
    return Bind(
        member_id=member.id,
        upline_id=upline.id,
        ancestor_ids=(upline.id, *upline.ancestor_ids),
        bound_at=now,
        source=source,
        expected_ancestor_ids=member.ancestor_ids,
        expected_bound_at=member.bound_at,
        upline_status=upline.promoter_status,
    )


def may_be_upline(candidate: MemberSnapshot, settings: BindingSettings) -> bool:
    """Whether the merchant's eligibility rule lets `candidate` be anyone's upline.

    An appointed member qualifies under every rule: the merchant's word
    outranks review and spending.
    """
    if candidate.promoter_status is PromoterStatus.APPOINTED:
        return True
    match settings.upline_eligibility:
        case UplineEligibility.EVERYONE:
            return True
        case UplineEligibility.REVIEWED:
            return candidate.promoter_status is PromoterStatus.APPROVED
        case UplineEligibility.SPEND_THRESHOLD:
            return candidate.spent_fen >= settings.spend_threshold_fen
        case UplineEligibility.APPOINTED:
            return False


def _mode_refusal(
    member: MemberSnapshot, settings: BindingSettings, now: datetime, created_by_this_push: bool
) -> RefusalReason | None:
    match settings.bind_mode:
        case BindMode.FIRST_BIND:
            return RefusalReason.ALREADY_BOUND if member.upline_id else None
        case BindMode.NEW_MEMBERS_ONLY:
            if member.upline_id:
                return RefusalReason.ALREADY_BOUND
            window = timedelta(seconds=settings.new_member_window_seconds)
            is_new = created_by_this_push or now - member.created_at <= window
            return None if is_new else RefusalReason.NOT_NEW_MEMBER
        case BindMode.OVERRIDE:
            return None
        case BindMode.EXPIRING:
            lasts = timedelta(days=settings.bind_expiry_days)
            unexpired = member.bound_at is not None and now < member.bound_at + lasts
            return RefusalReason.ALREADY_BOUND if member.upline_id and unexpired else None
