"""The finance report's pure computation and the tax figures' rules."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from distribution.finance import (
    EndBalance,
    Figure,
    Movement,
    bill_problem,
    day_bounds,
    ledger_movements,
    reconcile,
)
from distribution.ledger import (
    commission_cancelled,
    commission_clawback,
    commission_frozen,
    commission_settled,
    withdrawal_locked,
    withdrawal_paid,
)
from distribution.records import InvalidField
from distribution.tax import Payout, TaxProfile, TaxSettings, annual_incomes, mask_tax_id, year_bounds
from distribution.withdrawals import BillState, WithdrawalStatus

DAY = date(2026, 5, 1)
ENTRIES = [
    *commission_frozen("p1", "c1", 1_000), *commission_settled("p1", "c1", 1_000),
    *commission_cancelled("p1", "c2", 300, "r1"), *commission_clawback("p1", "c1", 400, "r2"),
    *withdrawal_locked("p2", "w1", 2_000), *withdrawal_paid("p2", "w1", 2_000, 20),
]
BUSINESS = [
    Movement(Figure.SETTLED, "c1", "p1", 1_000), Movement(Figure.CANCELLED, "c2", "p1", 300),
    Movement(Figure.CLAWED_BACK, "c1", "p1", 400),
    Movement(Figure.PAID, "w1", "p2", 1_980, "bank"), Movement(Figure.FEE, "w1", "p2", 20, "bank"),
]


def test_the_ledger_side_reads_one_entry_of_each_pair_as_a_positive_figure():
    movements = ledger_movements(ENTRIES, {"w1": "bank"})
    assert sorted(movements, key=lambda each: (each.figure, each.ref)) == sorted(BUSINESS,
                                                                                 key=lambda each: (each.figure, each.ref))


def test_records_that_agree_with_the_ledger_make_a_clean_report():
    balances = {"p1": EndBalance(-100, -100), "p2": EndBalance(0, 0)}
    report = reconcile(DAY, BUSINESS, ledger_movements(ENTRIES, {"w1": "bank"}), balances)
    assert report.clean and report.figures == report.ledger
    assert (report.figures.settled_fen, report.figures.reversed_fen, report.figures.paid_fen) == (1_000, 700, 1_980)
    assert report.figures.paid_by_method == {"bank": 1_980}
    assert [(row.promoter_id, row.debt_fen) for row in report.promoters] == [("p1", 100), ("p2", 0)]
    assert report.debt_fen == 100
    assert report.summary()[-1] == "reconcile clean: 2 promoters, 0 differences"


def test_every_disagreement_is_listed_against_its_record_and_promoter():
    business = [*BUSINESS[1:], Movement(Figure.SETTLED, "c9", "p1", 500)]  # c1's settlement missing, c9 unbooked
    ledger = [*ledger_movements(ENTRIES, {"w1": "bank"}), Movement(Figure.FEE, "w1", "p2", 1, "bank")]
    balances = {"p2": EndBalance(from_entries_fen=0, from_account_fen=5)}
    report = reconcile(DAY, business, ledger, balances)
    assert {(each.what, each.ref, each.promoter_id, each.ours_fen, each.theirs_fen) for each in report.differences} == {
        ("settled", "c1", "p1", None, 1_000),
        ("settled", "c9", "p1", 500, None),
        ("fee", "w1", "p2", 20, 21),
        ("balance", "available", "p2", 5, 0),
    }
    by_promoter = {row.promoter_id: len(row.differences) for row in report.promoters}
    assert by_promoter == {"p1": 2, "p2": 2}
    assert not report.clean and "NOT BALANCED" in report.summary()[-1]


@pytest.mark.parametrize(("status", "state", "amount", "problem"), [
    (WithdrawalStatus.PAID, BillState.SUCCESS, 990, None),
    (WithdrawalStatus.PAID, BillState.SUCCESS, 989, "another amount"),
    (WithdrawalStatus.PAID, BillState.TRANSFERING, 990, "TRANSFERING"),
    (WithdrawalStatus.PAID, None, None, "no bill"),
    (WithdrawalStatus.RETURNED, BillState.CANCELLED, 990, None),
    (WithdrawalStatus.RETURNED, None, None, None),
    (WithdrawalStatus.RETURNED, BillState.SUCCESS, 990, "SUCCESS"),
])
def test_a_payout_is_held_against_wechat_pays_bill(status, state, amount, problem):
    found = bill_problem(status, 990, state, amount)
    assert found == problem if problem is None else problem in found


def test_days_and_years_are_chinas():
    start, end = day_bounds(DAY)
    assert (start.astimezone(timezone.utc), end.astimezone(timezone.utc)) == (
        datetime(2026, 4, 30, 16, tzinfo=timezone.utc), datetime(2026, 5, 1, 16, tzinfo=timezone.utc))
    first, after = year_bounds(2026)
    assert first.astimezone(timezone.utc) == datetime(2025, 12, 31, 16, tzinfo=timezone.utc)
    assert after.astimezone(timezone.utc) == datetime(2026, 12, 31, 16, tzinfo=timezone.utc)


def test_annual_income_counts_the_fee_and_compares_above_the_threshold():
    incomes = annual_incomes([Payout("a", 6_000_000, 60_000), Payout("b", 10_000_000, 0),
                              Payout("a", 4_000_001, 40_000)])
    assert [(each.promoter_id, each.payouts, each.income_fen, each.net_fen) for each in incomes] == [
        ("a", 2, 10_000_001, 9_900_001), ("b", 1, 10_000_000, 10_000_000)]
    settings = TaxSettings()
    assert settings.declare_threshold_fen == 10_000_000
    assert [each.above(settings) for each in incomes] == [True, False]  # exactly at the threshold is not above it


def test_a_tax_profile_needs_a_company_for_a_tax_id_and_masks_it():
    assert TaxProfile.from_dict({"kind": "person"}).tax_id is None
    assert TaxProfile.from_dict({"kind": "company", "tax_id": "91330106MA2XXXXX1K"}).kind == "company"
    for body in ({"kind": "company"}, {"kind": "person", "tax_id": "91330106MA2XXXXX1K"},
                 {"kind": "company", "tax_id": "91330106MA2XXXXX1"}, {"kind": "company", "tax_id": "91330106MA2OXXXX1K"}):
        with pytest.raises(InvalidField) as refused:
            TaxProfile.from_dict(body)
        assert refused.value.field == "tax_id"
    with pytest.raises(InvalidField):
        TaxSettings.from_dict({"declare_threshold_fen": 0})
    assert mask_tax_id("91330106MA2XXXXX1K") == "91330106******XX1K"
