import itertools

import pytest

from distribution.records import InvalidField
from distribution.withdrawals import (
    TRANSITIONS,
    IllegalTransition,
    WithdrawalQuote,
    WithdrawalRefusal,
    WithdrawalRules,
    WithdrawalStatus,
    check_transition,
    check_withdrawal,
)

RULES = WithdrawalRules(
    min_fen=100,
    daily_count_cap=3,
    daily_amount_cap_fen=50_000,
    fee_bp=60,
    auto_approve_under_fen=20_000,
    min_distinct_paying_buyers=3,
)


def check(amount_fen, today_count=0, today_amount_fen=0, available_fen=100_000, distinct_buyers=3, is_first=False):
    return check_withdrawal(amount_fen, RULES, today_count, today_amount_fen, available_fen, distinct_buyers, is_first)


def test_a_withdrawal_is_quoted_with_its_fee_rounded_down():
    # 0.6% of 12,345 fen is 74.07 fen.
    assert check(12_345) == WithdrawalQuote(amount_fen=12_345, fee_fen=74, net_fen=12_271, needs_review=False)


@pytest.mark.parametrize(
    ("amount_fen", "status"),
    [(19_999, WithdrawalStatus.APPROVED), (20_000, WithdrawalStatus.PENDING_REVIEW)],
)
def test_withdrawals_under_the_threshold_are_approved_the_rest_reviewed(amount_fen, status):
    assert check(amount_fen).status_after_request is status


@pytest.mark.parametrize(
    ("kwargs", "refusal"),
    [
        ({"amount_fen": 99}, WithdrawalRefusal.BELOW_MINIMUM),
        ({"amount_fen": 0}, WithdrawalRefusal.BELOW_MINIMUM),
        ({"amount_fen": 1_001, "available_fen": 1_000}, WithdrawalRefusal.INSUFFICIENT_BALANCE),
        ({"amount_fen": 100, "available_fen": -500}, WithdrawalRefusal.INSUFFICIENT_BALANCE),
        ({"amount_fen": 100, "today_count": 3}, WithdrawalRefusal.DAILY_COUNT_CAP),
        ({"amount_fen": 10_001, "today_amount_fen": 40_000}, WithdrawalRefusal.DAILY_AMOUNT_CAP),
        ({"amount_fen": 100, "is_first": True, "distinct_buyers": 2}, WithdrawalRefusal.TOO_FEW_BUYERS),
    ],
)
def test_refusals(kwargs, refusal):
    assert check(**kwargs) is refusal


@pytest.mark.parametrize(
    "kwargs",
    [
        {"amount_fen": 100},
        {"amount_fen": 50_000, "available_fen": 50_000},
        {"amount_fen": 10_000, "today_amount_fen": 40_000, "today_count": 2},
        {"amount_fen": 100, "is_first": True, "distinct_buyers": 3},
        {"amount_fen": 100, "is_first": False, "distinct_buyers": 0},
    ],
)
def test_withdrawals_within_every_limit_are_accepted(kwargs):
    assert isinstance(check(**kwargs), WithdrawalQuote)


def test_withdrawal_rules_round_trip_through_plain_dicts():
    assert WithdrawalRules.from_dict(RULES.to_dict()) == RULES
    assert WithdrawalRules.from_dict({}) == WithdrawalRules()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"min_fen": 0}, "min_fen"),
        ({"min_fen": 600_000, "daily_amount_cap_fen": 500_000}, "min_fen"),
        ({"daily_count_cap": 0}, "daily_count_cap"),
        ({"daily_amount_cap_fen": "lots"}, "daily_amount_cap_fen"),
        ({"fee_bp": 10_000}, "fee_bp"),
        ({"fee_bp": -1}, "fee_bp"),
        ({"auto_approve_under_fen": None}, "auto_approve_under_fen"),
        ({"min_distinct_paying_buyers": -1}, "min_distinct_paying_buyers"),
        ({"max_fen": 1}, "max_fen"),
    ],
)
def test_withdrawal_rules_errors_name_the_field(data, field):
    with pytest.raises(InvalidField) as error:
        WithdrawalRules.from_dict(data)
    assert error.value.field == field


LEGAL = {
    (WithdrawalStatus.REQUESTED, WithdrawalStatus.APPROVED),
    (WithdrawalStatus.REQUESTED, WithdrawalStatus.PENDING_REVIEW),
    (WithdrawalStatus.PENDING_REVIEW, WithdrawalStatus.APPROVED),
    (WithdrawalStatus.PENDING_REVIEW, WithdrawalStatus.REJECTED),
    (WithdrawalStatus.PENDING_REVIEW, WithdrawalStatus.CANCELLED),
    (WithdrawalStatus.APPROVED, WithdrawalStatus.PAID),
    (WithdrawalStatus.APPROVED, WithdrawalStatus.FAILED),
    (WithdrawalStatus.FAILED, WithdrawalStatus.APPROVED),
    (WithdrawalStatus.FAILED, WithdrawalStatus.RETURNED),
}


def test_the_transition_table_is_exactly_the_life_of_a_withdrawal():
    assert {(current, target) for current, targets in TRANSITIONS.items() for target in targets} == LEGAL


@pytest.mark.parametrize(("current", "target"), sorted(LEGAL))
def test_legal_transitions_pass(current, target):
    check_transition(current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    sorted(set(itertools.product(WithdrawalStatus, repeat=2)) - LEGAL),
)
def test_every_other_transition_is_illegal(current, target):
    with pytest.raises(IllegalTransition):
        check_transition(current, target)


def test_a_failed_payment_may_be_retried_until_paid():
    path = [
        WithdrawalStatus.REQUESTED,
        WithdrawalStatus.APPROVED,
        WithdrawalStatus.FAILED,
        WithdrawalStatus.APPROVED,
        WithdrawalStatus.FAILED,
        WithdrawalStatus.APPROVED,
        WithdrawalStatus.PAID,
    ]
    for current, target in itertools.pairwise(path):
        check_transition(current, target)
