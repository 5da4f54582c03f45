"""Settlement periods and statements (结算单): when earned commissions become withdrawable, together.

Under `per_commission` each commission settles on its own once its
`unfreeze_at` has passed. Under a period policy (`daily`, `weekly`,
`monthly`) time is cut into periods in China's calendar, and a commission
belongs to the period its `unfreeze_at` falls in. Once a period has closed,
each promoter's commissions due by its end — the period's own and any
carried from earlier ones — make one statement, built once per promoter and
period:

- its lines are what is left of each commission after the refunds so far
  (reversals netted); commissions with nothing left are not in it;
- below `minimum_fen` no statement is built: the commissions carry to the
  next period;
- at or below `review_above_fen` it settles at once; above, it waits for the
  merchant's approval, its commissions still frozen. Approval settles what
  is left of each one then; rejection lets them go back to being due, so the
  next period's statement takes them again (and, above the threshold, asks
  again).

Pure: periods are computed from aware datetimes, amounts are integer fen.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Annotated

from pydantic import ConfigDict, Field

from distribution.calendar import CHINA
from distribution.money import Fen
from distribution.records import Integer, Record

# A day of the month every month has, so that a monthly period always starts on the day asked for.
LAST_SETTLEMENT_DAY = 28
REVIEW_ABOVE_FEN = 1_000_000  # 1万元: statements above it are approved by hand


class SettlementPolicy(StrEnum):
    PER_COMMISSION = "per_commission"  # each commission settles on its own once its freeze has passed
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


class SettlementSettings(Record):
    """When commissions become withdrawable: one by one, or together per promoter and period (a statement)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "policy": "weekly", "weekday": 1, "day_of_month": 1, "minimum_fen": 1_000, "review_above_fen": 1_000_000,
    }]})

    policy: SettlementPolicy = Field(
        SettlementPolicy.PER_COMMISSION,
        description="per_commission: each commission settles once its freeze days have passed. daily, weekly, "
                    "monthly: commissions due within a period (China time) settle together as one statement per "
                    "promoter once the period has closed.")
    weekday: Annotated[Integer, Field(ge=1, le=7)] = Field(
        1, description="weekly: the day each period starts on, 1 Monday to 7 Sunday; the previous week's "
                       "statements are built at its midnight.")
    day_of_month: Annotated[Integer, Field(ge=1, le=LAST_SETTLEMENT_DAY)] = Field(
        1, description="monthly: the day each period starts on (1-28); the previous month's statements are built "
                       "at its midnight.")
    minimum_fen: Fen = Field(
        0, description="A promoter's due commissions below this many fen make no statement: they carry to the "
                       "next period. 0: no minimum.")
    review_above_fen: Fen = Field(
        REVIEW_ABOVE_FEN, description="Statements above this many fen wait for the merchant's approval before "
                                      "their money becomes withdrawable.")


@dataclass(frozen=True)
class Period:
    """From `start` (included) to `end` (excluded), both midnight in China."""

    start: datetime
    end: datetime

    @property
    def key(self) -> str:
        """`<first day>_<day after the last>`: unique per period whatever the policy that cut it."""
        return f"{self.start.date().isoformat()}_{self.end.date().isoformat()}"


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, CHINA)


def _month_day(year: int, month: int, day: int) -> date:
    """`day` of the month `month` counts from `year`'s January (13 is next January, 0 last December)."""
    years, month_index = divmod(month - 1, 12)
    return date(year + years, month_index + 1, day)


def period_of(settings: SettlementSettings, at: datetime) -> Period:
    """The period `at` falls in under `settings`' policy; ValueError under `per_commission`, which has none."""
    day = at.astimezone(CHINA).date()
    match settings.policy:
        case SettlementPolicy.DAILY:
            first, after = day, day + timedelta(days=1)
        case SettlementPolicy.WEEKLY:
            first = day - timedelta(days=(day.isoweekday() - settings.weekday) % 7)
            after = first + timedelta(days=7)
        case SettlementPolicy.MONTHLY:
            month = day.month if day.day >= settings.day_of_month else day.month - 1
            first = _month_day(day.year, month, settings.day_of_month)
            after = _month_day(day.year, month + 1, settings.day_of_month)
        case _:
            raise ValueError(f"{settings.policy.value} settles commission by commission, not by period")
    return Period(_midnight(first), _midnight(after))


def last_closed(settings: SettlementSettings, now: datetime) -> Period:
    """The latest period that has closed at `now`: the one just before the period `now` is in."""
    return period_of(settings, period_of(settings, now).start - timedelta(microseconds=1))


class StatementStatus(StrEnum):
    SETTLED = "settled"  # its commissions have settled: the amount is in available
    AWAITING_REVIEW = "awaiting_review"  # above review_above_fen: its commissions stay frozen until approved
    REJECTED = "rejected"  # by the merchant: its commissions are due again, for the next period's statement


@dataclass(frozen=True)
class StatementLine:
    """What one commission contributes: what is left of it after refunds so far."""

    commission_id: str
    order_no: str
    amount_fen: int


@dataclass(frozen=True)
class Draft:
    lines: tuple[StatementLine, ...]
    status: StatementStatus | None  # None: no statement, the commissions carry to the next period

    @property
    def amount_fen(self) -> int:
        return sum(line.amount_fen for line in self.lines)


def draft(settings: SettlementSettings, lines: Iterable[StatementLine]) -> Draft:
    """The statement a promoter's due commissions make: the lines with something left, and whether it settles
    at once, waits for review, or is not built (nothing left, or below the minimum)."""
    kept = tuple(line for line in lines if line.amount_fen > 0)
    total = sum(line.amount_fen for line in kept)
    if total == 0 or total < settings.minimum_fen:
        return Draft(kept, None)
    return Draft(kept, StatementStatus.AWAITING_REVIEW if total > settings.review_above_fen
                 else StatementStatus.SETTLED)


def approved_lines(lines: Iterable[StatementLine], left_fen: Mapping[str, int]) -> tuple[StatementLine, ...]:
    """A statement's lines as approval settles them: each commission for what is left of it now (`left_fen`, by
    commission id; refunds may have landed while it waited), those with nothing left dropped."""
    return tuple(StatementLine(line.commission_id, line.order_no, left_fen[line.commission_id])
                 for line in lines if left_fen.get(line.commission_id, 0) > 0)


def statement_id(member_id: str, period: Period) -> str:
    """One statement per promoter and period: the id is the unique key that makes a second build fail."""
    return f"{member_id}:{period.key}"
