"""Withdrawals (提现): the merchant's limits, the check of a request, and the life of a withdrawal.

The requested amount is locked in the ledger when the request is accepted;
the fee is taken out of it when it is paid, so the promoter receives
`net_fen`. The fee is rounded down to the fen, in the promoter's favour.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Self

from pydantic import ConfigDict, Field, model_validator

from distribution.money import BASIS_POINTS, BasisPoints, Fen, share_fen
from distribution.records import Integer, InvalidField, Record


class WithdrawalRefusal(StrEnum):
    BELOW_MINIMUM = "below_minimum"
    INSUFFICIENT_BALANCE = "insufficient_balance"
    DAILY_COUNT_CAP = "daily_count_cap"
    DAILY_AMOUNT_CAP = "daily_amount_cap"
    TOO_FEW_BUYERS = "too_few_buyers"


class WithdrawalMethod(StrEnum):
    WECHAT_BALANCE = "wechat_balance"  # paid into the promoter's WeChat balance
    BANK = "bank"  # the merchant pays by hand, to the bank account the promoter gave


class WithdrawalStatus(StrEnum):
    REQUESTED = "requested"
    PENDING_REVIEW = "pending_review"
    APPROVED = "approved"  # payment may be attempted
    PAID = "paid"
    REJECTED = "rejected"  # by the merchant; the amount returns to available
    FAILED = "failed"  # the payment failed; retry, or give up
    RETURNED = "returned"  # given up after a failure; the amount returns to available
    CANCELLED = "cancelled"  # by the promoter while it waited for review; the amount returns to available


MAX_DAILY_WITHDRAWALS = 1_000
MAX_DISTINCT_BUYERS = 10_000


class WithdrawalRules(Record):
    """The merchant's limits on promoters' withdrawals, and which ones need review."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "min_fen": 1_000, "daily_count_cap": 3, "daily_amount_cap_fen": 500_000, "fee_bp": 60,
        "auto_approve_under_fen": 20_000, "min_distinct_paying_buyers": 1,
    }]})

    min_fen: Annotated[Fen, Field(ge=1)] = Field(
        100, description="The smallest withdrawal, in fen; at most daily_amount_cap_fen.")
    daily_count_cap: Annotated[Integer, Field(ge=1, le=MAX_DAILY_WITHDRAWALS)] = Field(
        3, description="How many withdrawals a promoter may request per day (rejected and returned ones do not count).")
    daily_amount_cap_fen: Annotated[Fen, Field(ge=1)] = Field(
        500_000, description="The most a promoter may request per day, in fen.")
    # Below 100%, so the promoter always receives something.
    fee_bp: Annotated[BasisPoints, Field(le=BASIS_POINTS - 1)] = Field(
        0, description="The fee taken out of each withdrawal when it is paid, in basis points (100 = 1%), rounded "
                       "down to the fen.")
    auto_approve_under_fen: Fen = Field(
        20_000, description="Withdrawals below this many fen are approved at once; others wait for the merchant's "
                            "review. 0: every withdrawal is reviewed.")
    # Before a promoter's first withdrawal: fewer buyers suggests they bought from themselves.
    min_distinct_paying_buyers: Annotated[Integer, Field(ge=0, le=MAX_DISTINCT_BUYERS)] = Field(
        1, description="How many different buyers must have paid orders that earned the promoter commission before "
                       "their first withdrawal.")

    @model_validator(mode="after")
    def _minimum_fits_the_daily_cap(self) -> Self:
        if self.min_fen > self.daily_amount_cap_fen:
            raise InvalidField("min_fen", "must not exceed daily_amount_cap_fen")
        return self


@dataclass(frozen=True)
class WithdrawalQuote:
    amount_fen: int  # locked now
    fee_fen: int
    net_fen: int  # paid to the promoter
    needs_review: bool

    @property
    def status_after_request(self) -> WithdrawalStatus:
        return WithdrawalStatus.PENDING_REVIEW if self.needs_review else WithdrawalStatus.APPROVED


def check_withdrawal(
    amount_fen: int,
    rules: WithdrawalRules,
    today_count: int,
    today_amount_fen: int,
    available_fen: int,
    distinct_buyers: int,
    is_first: bool,
) -> WithdrawalRefusal | WithdrawalQuote:
    """Whether a promoter may withdraw `amount_fen` now, and on what terms.

    `today_count` and `today_amount_fen` are the promoter's withdrawals already
    requested today and not rejected or returned. Refusals are checked in the
    order of `WithdrawalRefusal`. The lock itself must still be a conditional
    update on `available >= amount_fen`: this check only reads a snapshot.
    """
    if amount_fen < rules.min_fen:
        return WithdrawalRefusal.BELOW_MINIMUM
    if amount_fen > available_fen:
        return WithdrawalRefusal.INSUFFICIENT_BALANCE
    if today_count + 1 > rules.daily_count_cap:
        return WithdrawalRefusal.DAILY_COUNT_CAP
    if today_amount_fen + amount_fen > rules.daily_amount_cap_fen:
        return WithdrawalRefusal.DAILY_AMOUNT_CAP
    if is_first and distinct_buyers < rules.min_distinct_paying_buyers:
        return WithdrawalRefusal.TOO_FEW_BUYERS
    fee_fen = share_fen(amount_fen, rules.fee_bp)
    return WithdrawalQuote(
        amount_fen=amount_fen,
        fee_fen=fee_fen,
        net_fen=amount_fen - fee_fen,
        needs_review=amount_fen >= rules.auto_approve_under_fen,
    )


# Where a withdrawal's locked amount goes back to available.
UNLOCKING = frozenset({WithdrawalStatus.REJECTED, WithdrawalStatus.RETURNED, WithdrawalStatus.CANCELLED})


class IllegalTransition(ValueError):
    pass


TRANSITIONS: dict[WithdrawalStatus, frozenset[WithdrawalStatus]] = {
    WithdrawalStatus.REQUESTED: frozenset({WithdrawalStatus.APPROVED, WithdrawalStatus.PENDING_REVIEW}),
    WithdrawalStatus.PENDING_REVIEW: frozenset(
        {WithdrawalStatus.APPROVED, WithdrawalStatus.REJECTED, WithdrawalStatus.CANCELLED}
    ),
    WithdrawalStatus.APPROVED: frozenset({WithdrawalStatus.PAID, WithdrawalStatus.FAILED}),
    WithdrawalStatus.FAILED: frozenset({WithdrawalStatus.APPROVED, WithdrawalStatus.RETURNED}),
}


def check_transition(current: WithdrawalStatus, target: WithdrawalStatus) -> None:
    """Raise IllegalTransition unless a withdrawal in `current` may move to `target`.

    Entering PAID pays out the locked amount (`ledger.withdrawal_paid`);
    entering REJECTED, RETURNED or CANCELLED unlocks it (`ledger.withdrawal_unlocked`).
    A replayed step finds the withdrawal already in `target`: the service
    treats that as done, not as an error, and writes each step as a
    conditional update on `status == current`.
    """
    if target not in TRANSITIONS.get(current, frozenset()):
        raise IllegalTransition(f"a withdrawal cannot go from {current.value} to {target.value}")
