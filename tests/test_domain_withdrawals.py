import itertools

import pytest

from distribution.records import InvalidField
from distribution.withdrawals import (
    TRANSITIONS,
    WITHDRAWAL_OF_BILL,
    BillState,
    IllegalTransition,
    WithdrawalQuote,
    WithdrawalRefusal,
    WithdrawalRules,
    WithdrawalStatus,
    check_transition,
    check_withdrawal,
    contradicts,
    needs_user_name,
    steps_for_bill,
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
        ({"confirm_within_hours": 24}, "confirm_within_hours"),  # WeChat Pay closes it itself at about 24 h
        ({"real_name_check": 1}, "real_name_check"),
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
    *((payout, end) for payout in (WithdrawalStatus.APPROVED, WithdrawalStatus.WAITING_USER_CONFIRM,
                                   WithdrawalStatus.CANCELLING, WithdrawalStatus.TRANSFERRING)
      for end in (WithdrawalStatus.PAID, WithdrawalStatus.FAILED)),
    (WithdrawalStatus.APPROVED, WithdrawalStatus.WAITING_USER_CONFIRM),
    (WithdrawalStatus.APPROVED, WithdrawalStatus.TRANSFERRING),
    (WithdrawalStatus.WAITING_USER_CONFIRM, WithdrawalStatus.TRANSFERRING),
    (WithdrawalStatus.WAITING_USER_CONFIRM, WithdrawalStatus.CANCELLING),
    (WithdrawalStatus.CANCELLING, WithdrawalStatus.TRANSFERRING),
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


W = WithdrawalStatus
B = BillState


@pytest.mark.parametrize(("current", "state", "steps"), [
    (W.APPROVED, B.ACCEPTED, ()),
    (W.APPROVED, B.PROCESSING, ()),
    (W.APPROVED, B.WAIT_USER_CONFIRM, (W.WAITING_USER_CONFIRM,)),
    (W.APPROVED, B.SUCCESS, (W.PAID,)),
    (W.APPROVED, B.FAIL, (W.FAILED, W.RETURNED)),
    (W.WAITING_USER_CONFIRM, B.WAIT_USER_CONFIRM, ()),
    (W.WAITING_USER_CONFIRM, B.TRANSFERING, (W.TRANSFERRING,)),
    (W.WAITING_USER_CONFIRM, B.CANCELING, (W.CANCELLING,)),
    (W.WAITING_USER_CONFIRM, B.CANCELLED, (W.FAILED, W.RETURNED)),
    (W.WAITING_USER_CONFIRM, B.FAIL, (W.FAILED, W.RETURNED)),
    (W.CANCELLING, B.CANCELLED, (W.FAILED, W.RETURNED)),
    (W.CANCELLING, B.TRANSFERING, (W.TRANSFERRING,)),  # the promoter accepted before the cancel
    (W.TRANSFERRING, B.SUCCESS, (W.PAID,)),
    (W.TRANSFERRING, B.WAIT_USER_CONFIRM, ()),  # late news never moves a withdrawal back
    (W.TRANSFERRING, B.CANCELING, ()),
    (W.PAID, B.SUCCESS, ()),  # a repeated callback
    (W.RETURNED, B.CANCELLED, ()),
    (W.RETURNED, B.FAIL, ()),
    (W.PENDING_REVIEW, B.SUCCESS, ()),  # not approved: no bill can be ours
])
def test_each_bill_state_moves_the_withdrawal_forward_only(current, state, steps):
    assert steps_for_bill(current, state) == steps


def test_every_bill_state_says_what_the_withdrawal_does_and_every_path_is_legal():
    assert set(WITHDRAWAL_OF_BILL) == set(BillState)
    for current, state in itertools.product(WithdrawalStatus, BillState):
        path = [current, *steps_for_bill(current, state)]
        for before, after in itertools.pairwise(path):
            check_transition(before, after)
        once = steps_for_bill(path[-1], state)
        assert once == (), (current, state)  # applied twice, it does nothing the second time


def test_only_a_final_disagreement_is_a_contradiction():
    assert contradicts(W.PAID, B.FAIL) and contradicts(W.PAID, B.CANCELLED)
    assert contradicts(W.RETURNED, B.SUCCESS) and contradicts(W.RETURNED, B.TRANSFERING)
    assert not any(contradicts(status, state) for status in W if status not in (W.PAID, W.RETURNED) for state in B)
    assert not contradicts(W.PAID, B.SUCCESS) and not contradicts(W.RETURNED, B.CANCELLED)


@pytest.mark.parametrize(("net_fen", "check", "needed"), [
    (199_999, False, False), (200_000, False, True), (29, True, False), (30, True, True), (30, False, False)])
def test_the_payee_name_goes_with_large_transfers_or_when_the_merchant_checks_names(net_fen, check, needed):
    assert needs_user_name(net_fen, check) is needed
