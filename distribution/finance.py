"""The daily finance report (财务对账): a China day's money in, money out, reversals and debts, per promoter, as
the business records tell it and as the ledger tells it, and every place where the two disagree.

A report is built from `Movement`s, each one amount of one figure on one record (a commission or a
withdrawal) for one promoter, taken twice: once from the business records (commissions settled or reversed
that day, withdrawals paid that day) and once from the day's ledger entries (`ledger_movements`). The two
sides are compared record by record, so a difference names the commission or withdrawal it is about, not
just a total that is off. The figures the report shows are the business side's; the ledger's totals are
shown beside them.

Debts are read from the ledger: a promoter's `available` bucket at the end of the day, when negative (a
claw-back after settlement can leave it so). It is taken both by adding up the promoter's entries up to the
day's end and from the stored balance less the entries booked since; they must agree.

Payouts made through WeChat Pay's transfer bills are also held against the bill WeChat Pay reports under the
withdrawal's number (`bill_problem`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum

from distribution.calendar import CHINA
from distribution.ledger import Bucket, Entry, EntryKind
from distribution.money import yuan_digits
from distribution.withdrawals import BillState, WithdrawalStatus, contradicts


class Figure(StrEnum):
    SETTLED = "settled"  # money in: commissions that became withdrawable
    CANCELLED = "cancelled"  # a refund's share of a commission still frozen
    CLAWED_BACK = "clawed_back"  # a refund's share of a commission already settled
    PAID = "paid"  # money out: what the promoter received
    FEE = "fee"  # kept out of a payout


# Which entry of a movement's pair carries each figure, and its sign (the figure itself is never negative).
LEDGER_FIGURES: dict[EntryKind, tuple[Figure, Bucket, int]] = {
    EntryKind.COMMISSION_SETTLED: (Figure.SETTLED, Bucket.AVAILABLE, +1),
    EntryKind.COMMISSION_CANCELLED: (Figure.CANCELLED, Bucket.FROZEN, -1),
    EntryKind.COMMISSION_CLAWBACK: (Figure.CLAWED_BACK, Bucket.AVAILABLE, -1),
    EntryKind.WITHDRAWAL_PAID: (Figure.PAID, Bucket.LOCKED, -1),
    EntryKind.WITHDRAWAL_FEE: (Figure.FEE, Bucket.LOCKED, -1),
}
UNKNOWN_METHOD = "unknown"


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The China day `day` as [start, end) instants."""
    start = datetime.combine(day, time(), CHINA)
    return start, start + timedelta(days=1)


@dataclass(frozen=True)
class Movement:
    figure: Figure
    ref: str  # the commission's or the withdrawal's id
    promoter_id: str
    amount_fen: int
    method: str | None = None  # payouts and fees: how the withdrawal was paid


def ledger_movements(entries: Iterable[Entry], methods: Mapping[str, str]) -> list[Movement]:
    """The report's movements as the ledger books them; `methods`: withdrawal id -> method."""
    movements = []
    for entry in entries:
        mapped = LEDGER_FIGURES.get(entry.kind)
        if mapped is None or mapped[1] is not entry.bucket:
            continue
        figure, _, sign = mapped
        method = methods.get(entry.ref, UNKNOWN_METHOD) if figure in (Figure.PAID, Figure.FEE) else None
        movements.append(Movement(figure, entry.ref, entry.account_id, sign * entry.amount_fen, method))
    return movements


@dataclass(frozen=True)
class Difference:
    what: str  # a figure, "bill" (WeChat Pay's record) or "balance" (the end-of-day available)
    ref: str
    promoter_id: str | None
    ours_fen: int | None  # the business record's (for a balance: the stored account's)
    theirs_fen: int | None  # the ledger's, or WeChat Pay's
    problem: str

    def __str__(self) -> str:
        who = f" of {self.promoter_id}" if self.promoter_id else ""
        return f"{self.what} {self.ref}{who}: {self.problem} (ours {self.ours_fen}, theirs {self.theirs_fen})"


@dataclass
class Figures:
    settled_fen: int = 0
    cancelled_fen: int = 0
    clawed_back_fen: int = 0
    paid_fen: int = 0
    fee_fen: int = 0
    paid_by_method: dict[str, int] = field(default_factory=dict)

    def add(self, movement: Movement) -> None:
        name = f"{movement.figure.value}_fen"
        setattr(self, name, getattr(self, name) + movement.amount_fen)
        if movement.figure is Figure.PAID:
            method = movement.method or UNKNOWN_METHOD
            self.paid_by_method[method] = self.paid_by_method.get(method, 0) + movement.amount_fen

    @property
    def reversed_fen(self) -> int:
        return self.cancelled_fen + self.clawed_back_fen


@dataclass(frozen=True)
class EndBalance:
    """A promoter's `available` at the end of the day, two ways."""

    from_entries_fen: int
    from_account_fen: int

    @property
    def debt_fen(self) -> int:
        return max(0, -self.from_entries_fen)


@dataclass
class PromoterDay:
    promoter_id: str
    figures: Figures = field(default_factory=Figures)
    debt_fen: int = 0
    differences: list[Difference] = field(default_factory=list)


@dataclass
class DayReport:
    day: date
    figures: Figures  # the business records'
    ledger: Figures  # the ledger's
    debt_fen: int
    promoters: list[PromoterDay]
    differences: list[Difference]
    bills_checked: int = 0

    @property
    def clean(self) -> bool:
        return not self.differences

    def summary(self) -> list[str]:
        """The report in a few lines for a terminal, each difference on a line of its own, the verdict last."""
        figures, booked = self.figures, self.ledger
        methods = ", ".join(f"{method} {yuan_digits(fen)}" for method, fen in sorted(figures.paid_by_method.items()))
        lines = [
            f"finance report {self.day.isoformat()} (China time), in yuan; the ledger's figure in brackets",
            f"money in: settled {_both(figures.settled_fen, booked.settled_fen)}",
            f"reversals: cancelled {_both(figures.cancelled_fen, booked.cancelled_fen)}, "
            f"clawed back {_both(figures.clawed_back_fen, booked.clawed_back_fen)}",
            f"money out: paid {_both(figures.paid_fen, booked.paid_fen)}" + (f" ({methods})" if methods else "")
            + f", fees {_both(figures.fee_fen, booked.fee_fen)}",
            f"debts at the day's end: {yuan_digits(self.debt_fen)} "
            f"({sum(1 for row in self.promoters if row.debt_fen)} promoters)",
            f"transfer bills checked with WeChat Pay: {self.bills_checked}",
            *(str(difference) for difference in self.differences),
            f"reconcile {'clean' if self.clean else 'NOT BALANCED'}: {len(self.promoters)} promoters, "
            f"{len(self.differences)} differences",
        ]
        return lines

    def add_differences(self, found: Iterable[Difference]) -> None:
        rows = {row.promoter_id: row for row in self.promoters}
        for difference in found:
            self.differences.append(difference)
            if difference.promoter_id is not None:
                row = rows.get(difference.promoter_id)
                if row is None:
                    row = rows[difference.promoter_id] = PromoterDay(difference.promoter_id)
                    self.promoters.append(row)
                row.differences.append(difference)


def reconcile(day: date, business: Iterable[Movement], ledger: Iterable[Movement],
              balances: Mapping[str, EndBalance]) -> DayReport:
    """The day's report: figures per promoter and in total, and every difference between the two sides."""
    ours: dict[tuple[Figure, str, str], int] = defaultdict(int)
    theirs: dict[tuple[Figure, str, str], int] = defaultdict(int)
    figures, booked = Figures(), Figures()
    rows: dict[str, PromoterDay] = {}
    for movement in business:
        ours[(movement.figure, movement.ref, movement.promoter_id)] += movement.amount_fen
        figures.add(movement)
        _row(rows, movement.promoter_id).figures.add(movement)
    for movement in ledger:
        theirs[(movement.figure, movement.ref, movement.promoter_id)] += movement.amount_fen
        booked.add(movement)
        _row(rows, movement.promoter_id)
    differences = []
    for key in sorted(ours.keys() | theirs.keys()):
        figure, ref, promoter_id = key
        mine, booked_fen = ours.get(key), theirs.get(key)
        if (mine or 0) == (booked_fen or 0):
            continue
        problem = ("booked in the ledger without a business record" if mine is None else
                   "not booked in the ledger" if booked_fen is None else "the ledger booked another amount")
        differences.append(Difference(figure.value, ref, promoter_id, mine, booked_fen, problem))
    for promoter_id, balance in balances.items():
        if balance.from_entries_fen != balance.from_account_fen:
            differences.append(Difference("balance", "available", promoter_id, balance.from_account_fen,
                                          balance.from_entries_fen, "the stored balance differs from its entries"))
        if balance.debt_fen:
            _row(rows, promoter_id).debt_fen = balance.debt_fen
    report = DayReport(day, figures, booked, sum(row.debt_fen for row in rows.values()),
                       sorted(rows.values(), key=lambda row: row.promoter_id), [])
    report.add_differences(differences)
    return report


def _both(ours_fen: int, ledger_fen: int) -> str:
    return f"{yuan_digits(ours_fen)} [{yuan_digits(ledger_fen)}]"


def _row(rows: dict[str, PromoterDay], promoter_id: str) -> PromoterDay:
    row = rows.get(promoter_id)
    if row is None:
        row = rows[promoter_id] = PromoterDay(promoter_id)
    return row


def bill_problem(status: WithdrawalStatus, net_fen: int, state: BillState | None, bill_fen: int | None) -> str | None:
    """What is wrong with a transfer-bill payout as WeChat Pay reports its bill (`state` None: no such bill):
    a paid withdrawal's bill must be SUCCESS for exactly what the promoter received; a returned one's must
    not have paid."""
    if status is WithdrawalStatus.PAID:
        if state is None:
            return "WeChat Pay has no bill under this number"
        if state is not BillState.SUCCESS:
            return f"paid here, but WeChat Pay's bill is {state.value}"
        if bill_fen != net_fen:
            return "WeChat Pay's bill is for another amount"
        return None
    if state is not None and contradicts(status, state):
        return f"returned here, but WeChat Pay's bill is {state.value}"
    return None
