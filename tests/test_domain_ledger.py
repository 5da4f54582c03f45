import pytest

from distribution.ledger import (
    Bucket,
    Entry,
    EntryKind,
    balances_from_entries,
    commission_cancelled,
    commission_clawback,
    commission_frozen,
    commission_settled,
    withdrawal_locked,
    withdrawal_paid,
    withdrawal_unlocked,
)

ALICE = "alice"


def moves(entries):
    return [(entry.bucket, entry.amount_fen, entry.kind) for entry in entries]


def test_a_commission_is_credited_frozen():
    assert commission_frozen(ALICE, "c1", 1_000) == [
        Entry(ALICE, Bucket.FROZEN, 1_000, EntryKind.COMMISSION_FROZEN, "c1", "commission_frozen:c1:frozen")
    ]


def test_settling_moves_frozen_to_available():
    assert moves(commission_settled(ALICE, "c1", 1_000)) == [
        (Bucket.FROZEN, -1_000, EntryKind.COMMISSION_SETTLED),
        (Bucket.AVAILABLE, 1_000, EntryKind.COMMISSION_SETTLED),
    ]


def test_a_refund_cancels_from_frozen_before_settlement_and_claws_back_from_available_after():
    assert moves(commission_cancelled(ALICE, "c1", 300, "r1")) == [
        (Bucket.FROZEN, -300, EntryKind.COMMISSION_CANCELLED)
    ]
    assert moves(commission_clawback(ALICE, "c1", 300, "r1")) == [
        (Bucket.AVAILABLE, -300, EntryKind.COMMISSION_CLAWBACK)
    ]


def test_a_withdrawal_locks_then_pays_net_and_fee_from_locked():
    assert moves(withdrawal_locked(ALICE, "w1", 10_000)) == [
        (Bucket.AVAILABLE, -10_000, EntryKind.WITHDRAWAL_LOCKED),
        (Bucket.LOCKED, 10_000, EntryKind.WITHDRAWAL_LOCKED),
    ]
    assert moves(withdrawal_paid(ALICE, "w1", 10_000, 60)) == [
        (Bucket.LOCKED, -9_940, EntryKind.WITHDRAWAL_PAID),
        (Bucket.LOCKED, -60, EntryKind.WITHDRAWAL_FEE),
    ]


def test_a_free_withdrawal_has_no_fee_entry():
    assert moves(withdrawal_paid(ALICE, "w1", 10_000, 0)) == [(Bucket.LOCKED, -10_000, EntryKind.WITHDRAWAL_PAID)]


def test_an_unlocked_withdrawal_returns_to_available():
    assert moves(withdrawal_unlocked(ALICE, "w1", 10_000)) == [
        (Bucket.LOCKED, -10_000, EntryKind.WITHDRAWAL_UNLOCKED),
        (Bucket.AVAILABLE, 10_000, EntryKind.WITHDRAWAL_UNLOCKED),
    ]


def test_zero_fen_moves_nothing():
    assert commission_settled(ALICE, "c1", 0) == []
    assert commission_cancelled(ALICE, "c1", 0, "r1") == []


@pytest.mark.parametrize(
    "movement",
    [
        lambda: commission_frozen(ALICE, "c1", -1),
        lambda: withdrawal_locked(ALICE, "w1", -5),
        lambda: withdrawal_paid(ALICE, "w1", 100, 101),
        lambda: withdrawal_paid(ALICE, "w1", 100, -1),
    ],
)
def test_negative_amounts_are_refused(movement):
    with pytest.raises(ValueError):
        movement()


def a_commissions_and_a_withdrawals_life():
    return [
        *commission_frozen(ALICE, "c1", 1_000),
        *commission_cancelled(ALICE, "c1", 300, "r1"),
        *commission_cancelled(ALICE, "c1", 100, "r2"),
        *commission_settled(ALICE, "c1", 600),
        *commission_clawback(ALICE, "c1", 200, "r3"),
        *commission_clawback(ALICE, "c1", 400, "r4"),
        *commission_frozen(ALICE, "c2", 5_000),
        *commission_settled(ALICE, "c2", 5_000),
        *withdrawal_locked(ALICE, "w1", 3_000),
        *withdrawal_paid(ALICE, "w1", 3_000, 30),
        *withdrawal_locked(ALICE, "w2", 1_000),
        *withdrawal_unlocked(ALICE, "w2", 1_000),
    ]


def test_every_movement_has_its_own_key():
    keys = [entry.idempotency_key for entry in a_commissions_and_a_withdrawals_life()]
    assert len(keys) == len(set(keys))


def test_a_replay_produces_identical_keys():
    assert a_commissions_and_a_withdrawals_life() == a_commissions_and_a_withdrawals_life()


def test_balances_are_derived_from_the_entries():
    entries = [*a_commissions_and_a_withdrawals_life(), *commission_frozen("bob", "c3", 70)]
    assert balances_from_entries(entries) == {
        ALICE: {Bucket.FROZEN: 0, Bucket.AVAILABLE: 2_000, Bucket.LOCKED: 0},
        "bob": {Bucket.FROZEN: 70, Bucket.AVAILABLE: 0, Bucket.LOCKED: 0},
    }
    assert balances_from_entries([]) == {}


def test_a_clawback_after_withdrawal_leaves_a_debt_that_later_earnings_pay_first():
    entries = [
        *commission_frozen(ALICE, "c1", 1_000),
        *commission_settled(ALICE, "c1", 1_000),
        *withdrawal_locked(ALICE, "w1", 1_000),
        *withdrawal_paid(ALICE, "w1", 1_000, 0),
        *commission_clawback(ALICE, "c1", 1_000, "r1"),
    ]
    assert balances_from_entries(entries)[ALICE][Bucket.AVAILABLE] == -1_000
    entries += commission_frozen(ALICE, "c2", 1_500) + commission_settled(ALICE, "c2", 1_500)
    assert balances_from_entries(entries)[ALICE] == {Bucket.FROZEN: 0, Bucket.AVAILABLE: 500, Bucket.LOCKED: 0}


@pytest.mark.parametrize(
    "transfer",
    [
        commission_settled(ALICE, "c1", 123),
        withdrawal_locked(ALICE, "w1", 123),
        withdrawal_unlocked(ALICE, "w1", 123),
    ],
)
def test_transfers_between_buckets_conserve_money(transfer):
    assert sum(entry.amount_fen for entry in transfer) == 0
