"""Withdrawals (提现): the merchant's limits, the check of a request, and the life of a withdrawal.

The requested amount is locked in the ledger when the request is accepted;
the fee is taken out of it when it is paid, so the promoter receives
`net_fen`. The fee is rounded down to the fen, in the promoter's favour.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Self

from pydantic import ConfigDict, Field, StrictBool, model_validator

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
    # Payment may be attempted: wechat_balance ones have no transfer bill waiting for the promoter yet;
    # bank ones wait for the merchant to pay by hand.
    APPROVED = "approved"
    WAITING_USER_CONFIRM = "waiting_user_confirm"  # the transfer bill waits for the promoter to accept it in WeChat
    TRANSFERRING = "transferring"  # accepted: WeChat Pay is moving the money
    CANCELLING = "cancelling"  # left unconfirmed too long: WeChat Pay was asked to cancel the bill
    PAID = "paid"
    REJECTED = "rejected"  # by the merchant; the amount returns to available
    FAILED = "failed"  # the payment failed (a step on the way to returned)
    RETURNED = "returned"  # after a failed or cancelled payment; the amount returns to available
    CANCELLED = "cancelled"  # by the promoter while it waited for review; the amount returns to available


class BillState(StrEnum):
    """The states of a WeChat Pay transfer bill (商家转账单), as WeChat Pay spells them."""

    ACCEPTED = "ACCEPTED"  # accepted, not yet ready for the promoter
    PROCESSING = "PROCESSING"  # locking the merchant's funds (stays here while the balance is short)
    WAIT_USER_CONFIRM = "WAIT_USER_CONFIRM"  # waits for the promoter to accept it (wx.requestMerchantTransfer)
    TRANSFERING = "TRANSFERING"  # accepted by the promoter, being transferred
    SUCCESS = "SUCCESS"  # paid
    FAIL = "FAIL"  # failed, or left unconfirmed until WeChat Pay closed it (about 24 hours)
    CANCELING = "CANCELING"  # the merchant's cancel is under way
    CANCELLED = "CANCELLED"  # cancelled before the promoter accepted it


FINAL_BILL_STATES = frozenset({BillState.SUCCESS, BillState.FAIL, BillState.CANCELLED})

# What a transfer bill in each state makes of its withdrawal.
WITHDRAWAL_OF_BILL: dict[BillState, WithdrawalStatus] = {
    BillState.ACCEPTED: WithdrawalStatus.APPROVED,
    BillState.PROCESSING: WithdrawalStatus.APPROVED,
    BillState.WAIT_USER_CONFIRM: WithdrawalStatus.WAITING_USER_CONFIRM,
    BillState.TRANSFERING: WithdrawalStatus.TRANSFERRING,
    BillState.SUCCESS: WithdrawalStatus.PAID,
    BillState.FAIL: WithdrawalStatus.RETURNED,
    BillState.CANCELING: WithdrawalStatus.CANCELLING,
    BillState.CANCELLED: WithdrawalStatus.RETURNED,
}

# A wechat_balance withdrawal in these has (or is about to have) a transfer bill that is not final.
PAYOUT_UNDER_WAY = frozenset({WithdrawalStatus.APPROVED, WithdrawalStatus.WAITING_USER_CONFIRM,
                              WithdrawalStatus.TRANSFERRING, WithdrawalStatus.CANCELLING})

# WeChat Pay wants the payee's name (encrypted) from 2,000 yuan, and takes none below 0.3 yuan.
USER_NAME_REQUIRED_FROM_FEN = 200_000
USER_NAME_ALLOWED_FROM_FEN = 30


def needs_user_name(net_fen: int, real_name_check: bool) -> bool:
    """Whether a transfer of `net_fen` is sent with the payee's name, which WeChat Pay checks against the
    WeChat account's real name."""
    return net_fen >= USER_NAME_REQUIRED_FROM_FEN or (real_name_check and net_fen >= USER_NAME_ALLOWED_FROM_FEN)


MAX_DAILY_WITHDRAWALS = 1_000
MAX_DISTINCT_BUYERS = 10_000
MAX_CONFIRM_HOURS = 23


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
    # WeChat Pay itself closes an unconfirmed transfer after about 24 hours, as FAIL; ours comes first.
    confirm_within_hours: Annotated[Integer, Field(ge=1, le=MAX_CONFIRM_HOURS)] = Field(
        23, description="How long a WeChat-balance payout waits for the promoter to accept it in WeChat before it "
                        "is cancelled and the amount returns to available.")
    real_name_check: StrictBool = Field(
        False, description="Send the promoter's name with every WeChat-balance payout (from 0.3 yuan), so that WeChat "
                           "Pay pays only the person of that real name; from 2,000 yuan it is always sent.")

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


_PAID_OR_FAILED = frozenset({WithdrawalStatus.PAID, WithdrawalStatus.FAILED})

TRANSITIONS: dict[WithdrawalStatus, frozenset[WithdrawalStatus]] = {
    WithdrawalStatus.REQUESTED: frozenset({WithdrawalStatus.APPROVED, WithdrawalStatus.PENDING_REVIEW}),
    WithdrawalStatus.PENDING_REVIEW: frozenset(
        {WithdrawalStatus.APPROVED, WithdrawalStatus.REJECTED, WithdrawalStatus.CANCELLED}
    ),
    WithdrawalStatus.APPROVED: _PAID_OR_FAILED | {WithdrawalStatus.WAITING_USER_CONFIRM, WithdrawalStatus.TRANSFERRING},
    WithdrawalStatus.WAITING_USER_CONFIRM: _PAID_OR_FAILED | {WithdrawalStatus.TRANSFERRING,
                                                              WithdrawalStatus.CANCELLING},
    # A cancel loses to a promoter who accepted first.
    WithdrawalStatus.CANCELLING: _PAID_OR_FAILED | {WithdrawalStatus.TRANSFERRING},
    WithdrawalStatus.TRANSFERRING: _PAID_OR_FAILED,
    WithdrawalStatus.FAILED: frozenset({WithdrawalStatus.RETURNED}),
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


def steps_for_bill(current: WithdrawalStatus, state: BillState) -> tuple[WithdrawalStatus, ...]:
    """The moves that bring a withdrawal in `current` to what its transfer bill in `state` says, in order;
    none when it is there already, or when the news is older than what the withdrawal knows (a late or
    repeated callback, a query overtaken by one): a withdrawal never moves back. FAIL and CANCELLED both
    return the amount, through FAILED."""
    target = WITHDRAWAL_OF_BILL[state]
    if target is WithdrawalStatus.RETURNED:
        return (WithdrawalStatus.FAILED, WithdrawalStatus.RETURNED) if WithdrawalStatus.FAILED in TRANSITIONS.get(
            current, frozenset()) else ()
    return (target,) if target in TRANSITIONS.get(current, frozenset()) else ()


def contradicts(current: WithdrawalStatus, state: BillState) -> bool:
    """A final withdrawal whose bill says otherwise: paid but the bill failed, or returned but the bill paid.
    Never expected (the amount returns only on a final FAIL or CANCELLED); reported, never applied."""
    if current is WithdrawalStatus.PAID:
        return state in (BillState.FAIL, BillState.CANCELLED)
    if current is WithdrawalStatus.RETURNED:
        return state in (BillState.SUCCESS, BillState.TRANSFERING)
    return False
