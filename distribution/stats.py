"""The shop's numbers over China calendar days: the ranges they are asked for, the funnel's counters, and
what the ledger's daily totals add up to. Pure: the stores keep the counters, this module names them and
works out the figures.

The funnel: a promoter's code scanned or share link opened (`scans`, `visits`), a member bound to the
promoter (`binds`), a bound member's first paid order (`buyers`, each buyer once), and the paid totals of
orders whose chain starts at the promoter (`sales_fen`, as paid: refunds are not taken off). A member
becomes a new promoter (`new_promoters`) on the day their first member is bound to them.

The ledger's daily totals sum each day's entries by kind and bucket: a bucket's balance at the end of a day
is the sum of its totals up to that day, whatever the number of accounts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from distribution.calendar import china_day
from distribution.errors import Invalid
from distribution.ledger import Bucket, EntryKind

MAX_RANGE_DAYS = 366

# Why a range was refused: the error codes a client (the console) can tell apart.
DAYS_OR_DATES = "days_or_dates"
DAYS_OUT_OF_RANGE = "days_out_of_range"
TOO_EARLY = "range_too_early"
UPSIDE_DOWN = "range_upside_down"
TOO_LONG = "range_too_long"

FUNNEL_COUNTERS = ("scans", "visits", "binds", "buyers", "sales_fen")
# The shop's own daily counters: the funnel's and the promoters it gained.
SHOP_COUNTERS = (*FUNNEL_COUNTERS, "new_promoters")


@dataclass(frozen=True)
class DayRange:
    """China calendar days from `first` to `last`, both included."""

    first: date
    last: date

    @property
    def days(self) -> Iterator[date]:
        return (self.first + timedelta(days=offset) for offset in range((self.last - self.first).days + 1))


def day_range(first: date | None, last: date | None, days: int | None, today: date,
              default_days: int) -> DayRange:
    """The range asked for: `from`/`to` (each defaulting from the other end), or the last `days` days up to
    today; Invalid, naming the field to blame, when the range is upside down or longer than MAX_RANGE_DAYS."""
    if days is not None and (first is not None or last is not None):
        raise Invalid("give either days or from/to, not both", code=DAYS_OR_DATES, field="days")
    if days is not None and not 1 <= days <= MAX_RANGE_DAYS:
        raise Invalid(f"days must be between 1 and {MAX_RANGE_DAYS}", code=DAYS_OUT_OF_RANGE, field="days")
    last = last or today
    if last < date.min + timedelta(days=MAX_RANGE_DAYS):
        raise Invalid("to is before any day this shop could have", code=TOO_EARLY, field="to")
    first = first or last - timedelta(days=(days or default_days) - 1)
    if first > last:
        raise Invalid("from must not be after to", code=UPSIDE_DOWN, field="from")
    if (last - first).days + 1 > MAX_RANGE_DAYS:
        raise Invalid(f"the range spans at most {MAX_RANGE_DAYS} days", code=TOO_LONG, field="from")
    return DayRange(first, last)


@dataclass(frozen=True)
class Funnel:
    """Scans and share-link visits -> binds -> buyers with a paid order -> sales."""

    scans: int = 0
    visits: int = 0
    binds: int = 0
    buyers: int = 0
    sales_fen: int = 0

    @classmethod
    def of(cls, counters: Mapping[str, int]) -> Funnel:
        return cls(**{name: int(counters.get(name, 0)) for name in FUNNEL_COUNTERS})

    @property
    def arrivals(self) -> int:
        """The funnel's top: everyone who came through a promoter's code or link."""
        return self.scans + self.visits


def ledger_field(kind: EntryKind, bucket: Bucket) -> str:
    """The daily total of the entries of `kind` in `bucket` (signed, as the entries are)."""
    return f"{kind.value}_{bucket.value}_fen"


LEDGER_FIELDS = tuple(ledger_field(kind, bucket) for kind in EntryKind for bucket in Bucket)


def add_movement(day_totals: dict[str, Counter], kind: EntryKind, bucket: Bucket, amount_fen: int,
                 at: datetime) -> None:
    """Add one entry's amount to `day_totals` ({China day: {ledger field: fen}}), under the day it was made."""
    day_totals.setdefault(china_day(at), Counter())[ledger_field(kind, bucket)] += amount_fen


def balance_fen(totals: Mapping[str, int], bucket: Bucket) -> int:
    """What every account holds in `bucket`, given the totals of all days up to some day."""
    return sum(totals.get(ledger_field(kind, bucket), 0) for kind in EntryKind)


def earned_commission_fen(totals: Mapping[str, int]) -> int:
    """Commissions posted, less what refunds cancelled or clawed back (those totals are negative)."""
    return (totals.get(ledger_field(EntryKind.COMMISSION_FROZEN, Bucket.FROZEN), 0)
            + totals.get(ledger_field(EntryKind.COMMISSION_CANCELLED, Bucket.FROZEN), 0)
            + totals.get(ledger_field(EntryKind.COMMISSION_CLAWBACK, Bucket.AVAILABLE), 0))


def paid_out_fen(totals: Mapping[str, int]) -> int:
    """What withdrawals paid to promoters (net of fees)."""
    return -totals.get(ledger_field(EntryKind.WITHDRAWAL_PAID, Bucket.LOCKED), 0)
