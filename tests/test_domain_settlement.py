"""Settlement periods in China's calendar, and what a statement of given commissions amounts to."""

from datetime import datetime, timezone

import pytest

from distribution.calendar import CHINA
from distribution.records import InvalidField
from distribution.settlement import (
    Period,
    SettlementPolicy,
    SettlementSettings,
    StatementLine,
    StatementStatus,
    approved_lines,
    draft,
    last_closed,
    period_of,
    statement_id,
)


def china(day: str, clock: str = "00:00") -> datetime:
    return datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=CHINA)


def days(period: Period) -> tuple[str, str]:
    return period.start.date().isoformat(), period.end.date().isoformat()


DAILY = SettlementSettings(policy=SettlementPolicy.DAILY)
WEEKLY = SettlementSettings(policy=SettlementPolicy.WEEKLY)  # weeks start on Monday
MONTHLY = SettlementSettings(policy=SettlementPolicy.MONTHLY)


def test_a_day_is_chinas_day_whatever_the_utc_date():
    # 2026-05-31 16:30 UTC is already 2026-06-01 00:30 in China.
    assert days(period_of(DAILY, datetime(2026, 5, 31, 16, 30, tzinfo=timezone.utc))) == ("2026-06-01", "2026-06-02")
    assert days(period_of(DAILY, datetime(2026, 5, 31, 15, 59, tzinfo=timezone.utc))) == ("2026-05-31", "2026-06-01")
    assert period_of(DAILY, china("2026-05-31", "12:00")).start == china("2026-05-31")


def test_a_week_runs_from_its_weekday_across_a_month_end():
    # 2026-05-31 is a Sunday: the week from Monday 25 May ends with it, the next starts on 1 June.
    assert days(period_of(WEEKLY, china("2026-05-31", "23:59"))) == ("2026-05-25", "2026-06-01")
    assert days(period_of(WEEKLY, china("2026-06-01"))) == ("2026-06-01", "2026-06-08")
    thursdays = SettlementSettings(policy=SettlementPolicy.WEEKLY, weekday=4)
    assert days(period_of(thursdays, china("2026-05-31"))) == ("2026-05-28", "2026-06-04")
    assert days(period_of(thursdays, china("2026-05-28"))) == ("2026-05-28", "2026-06-04")
    assert days(period_of(thursdays, china("2026-05-27", "23:59"))) == ("2026-05-21", "2026-05-28")


def test_a_month_runs_from_its_day_across_a_year_end():
    assert days(period_of(MONTHLY, china("2026-05-31", "23:59"))) == ("2026-05-01", "2026-06-01")
    assert days(period_of(MONTHLY, china("2026-12-31"))) == ("2026-12-01", "2027-01-01")
    on_the_15th = SettlementSettings(policy=SettlementPolicy.MONTHLY, day_of_month=15)
    assert days(period_of(on_the_15th, china("2026-01-10"))) == ("2025-12-15", "2026-01-15")
    assert days(period_of(on_the_15th, china("2026-01-15"))) == ("2026-01-15", "2026-02-15")
    on_the_28th = SettlementSettings(policy=SettlementPolicy.MONTHLY, day_of_month=28)
    assert days(period_of(on_the_28th, china("2026-03-01"))) == ("2026-02-28", "2026-03-28")


@pytest.mark.parametrize("settings, now, closed", [
    (DAILY, china("2026-06-01", "00:00"), ("2026-05-31", "2026-06-01")),
    (DAILY, china("2026-05-31", "23:59"), ("2026-05-30", "2026-05-31")),
    (WEEKLY, china("2026-06-01", "00:00"), ("2026-05-25", "2026-06-01")),
    (WEEKLY, china("2026-05-31", "23:59"), ("2026-05-18", "2026-05-25")),
    (MONTHLY, china("2026-06-01", "00:00"), ("2026-05-01", "2026-06-01")),
    (MONTHLY, china("2026-05-31", "23:59"), ("2026-04-01", "2026-05-01")),
    (MONTHLY, china("2026-01-02"), ("2025-12-01", "2026-01-01")),
])
def test_the_last_closed_period_ends_where_the_current_one_starts(settings, now, closed):
    assert days(last_closed(settings, now)) == closed
    assert last_closed(settings, now).end == period_of(settings, now).start


def test_per_commission_has_no_periods():
    with pytest.raises(ValueError):
        period_of(SettlementSettings(), china("2026-05-31"))


def test_settings_bounds():
    assert SettlementSettings().review_above_fen == 1_000_000  # 1万元
    for field, value in (("weekday", 0), ("weekday", 8), ("day_of_month", 29), ("minimum_fen", -1)):
        with pytest.raises(InvalidField) as raised:
            SettlementSettings.from_dict({field: value})
        assert raised.value.field == field


def lines(*amounts: int) -> list[StatementLine]:
    return [StatementLine(f"o{index}:0:1", f"o{index}", amount) for index, amount in enumerate(amounts)]


def test_a_statement_sums_what_is_left_and_settles_up_to_the_review_threshold():
    settings = SettlementSettings(policy=SettlementPolicy.DAILY, review_above_fen=10_000)
    at_threshold = draft(settings, lines(6_000, 0, 4_000))
    assert at_threshold.amount_fen == 10_000 and at_threshold.status is StatementStatus.SETTLED
    assert [line.commission_id for line in at_threshold.lines] == ["o0:0:1", "o2:0:1"]  # nothing left: not in it
    above = draft(settings, lines(6_000, 4_001))
    assert above.amount_fen == 10_001 and above.status is StatementStatus.AWAITING_REVIEW


def test_below_the_minimum_or_with_nothing_left_no_statement_is_built():
    settings = SettlementSettings(policy=SettlementPolicy.WEEKLY, minimum_fen=1_000)
    assert draft(settings, lines(600, 399)).status is None
    assert draft(settings, lines(600, 400)).status is StatementStatus.SETTLED
    assert draft(SettlementSettings(policy=SettlementPolicy.DAILY), lines(0, 0)).status is None


def test_approval_settles_what_is_left_of_each_commission_now():
    held = lines(6_000, 5_000, 3_000)
    assert approved_lines(held, {"o0:0:1": 6_000, "o1:0:1": 2_500, "o2:0:1": 0}) == (
        StatementLine("o0:0:1", "o0", 6_000), StatementLine("o1:0:1", "o1", 2_500))


def test_one_statement_id_per_promoter_and_period():
    may = period_of(MONTHLY, china("2026-05-31"))
    assert statement_id("m1", may) == "m1:2026-05-01_2026-06-01"
    assert statement_id("m1", may) != statement_id("m1", period_of(DAILY, china("2026-05-01")))
