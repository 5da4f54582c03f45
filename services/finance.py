"""The daily finance report (财务对账), built from the day's business records and the day's ledger entries,
and each transfer-bill payout of the day held against WeChat Pay's bill.

`python -m bot ledger reconcile --day D` prints `FinanceService.day_report(D)` and exits non-zero on any
difference; the console and the merchant API show it and export it (`services.finance_exports`). The pure
comparison is the domain's (`distribution.finance.reconcile`).

WeChat Pay is asked about each bill by its out_bill_no (the withdrawal's id), at most
`BILL_QUERIES_AT_ONCE` at a time; a bill it cannot tell about now is itself a difference, so a report is
never clean by default.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta

from pymongo.asynchronous.database import AsyncDatabase

from distribution.finance import (
    DayReport,
    Difference,
    EndBalance,
    Figure,
    Movement,
    bill_problem,
    day_bounds,
    ledger_movements,
    reconcile,
)
from distribution.ledger import EntryKind
from distribution.withdrawals import WithdrawalMethod, WithdrawalStatus
from stores.finance import FinanceStore, entered_at
from wechatpay import PayError, TransferBills

BILL_QUERIES_AT_ONCE = 8
ACCOUNTS_PER_READ = 500
# Withdrawals whose last step the report reads: paid (money out) and returned (a bill must not have paid).
ENDED = [WithdrawalStatus.PAID.value, WithdrawalStatus.RETURNED.value]
PAYOUT_KINDS = frozenset({EntryKind.WITHDRAWAL_PAID, EntryKind.WITHDRAWAL_FEE})


class FinanceService:
    def __init__(self, db: AsyncDatabase, bills: TransferBills | None):
        self.store = FinanceStore(db)
        self.bills = bills  # None: WeChat Pay is not configured, and no bill is checked

    async def day_report(self, day: date) -> DayReport:
        start, end = day_bounds(day)
        business = [movement async for movement in self._commission_movements(start, end)]
        methods: dict[str, str] = {}
        to_check: list[dict] = []
        async for withdrawal in self.store.withdrawals_moved_between(ENDED, start, end):
            if not start <= entered_at(withdrawal, withdrawal["status"]) < end:
                continue
            methods[withdrawal["_id"]] = withdrawal["method"]
            if withdrawal["status"] == WithdrawalStatus.PAID.value:
                business += _payout_movements(withdrawal)
            if withdrawal["method"] == WithdrawalMethod.WECHAT_BALANCE.value and withdrawal.get("bill_state"):
                to_check.append(withdrawal)
        entries = [entry async for entry in self.store.entries_between(start, end)]
        unknown = sorted({entry.ref for entry in entries if entry.kind in PAYOUT_KINDS} - methods.keys())
        methods.update(await self.store.methods(unknown))
        ledger = ledger_movements(entries, methods)
        promoters = sorted({movement.promoter_id for movement in (*business, *ledger)})
        report = reconcile(day, business, ledger, await self._end_balances(promoters, end))
        if self.bills is not None:
            report.add_differences(await self._check_bills(to_check))
            report.bills_checked = len(to_check)
        return report

    async def reports(self, first: date, last: date) -> AsyncIterator[DayReport]:
        """Each day's report from `first` to `last`, one at a time."""
        day = first
        while day <= last:
            yield await self.day_report(day)
            day += timedelta(days=1)

    async def _commission_movements(self, start: datetime, end: datetime) -> AsyncIterator[Movement]:
        async for commission in self.store.settled_between(start, end):
            yield Movement(Figure.SETTLED, commission["_id"], commission["beneficiary_id"],
                           commission.get("settled_fen", 0))
        async for commission in self.store.reversed_between(start, end):
            for reversal in commission.get("reversals", []):
                if start <= reversal["at"] < end:
                    yield Movement(Figure(reversal["figure"]), commission["_id"], commission["beneficiary_id"],
                                   reversal["fen"])

    async def _end_balances(self, promoters: list[str], end: datetime) -> dict[str, EndBalance]:
        balances = {}
        for first in range(0, len(promoters), ACCOUNTS_PER_READ):
            found = await self.store.available_at(promoters[first:first + ACCOUNTS_PER_READ], end)
            balances.update((promoter_id, EndBalance(*pair)) for promoter_id, pair in found.items())
        return balances

    async def _check_bills(self, withdrawals: list[dict]) -> list[Difference]:
        """WeChat Pay's bill of each, asked `BILL_QUERIES_AT_ONCE` at a time."""
        turns = asyncio.Semaphore(BILL_QUERIES_AT_ONCE)

        async def check(withdrawal: dict) -> Difference | None:
            wanted = withdrawal["net_fen"]
            async with turns:
                try:
                    bill = await self.bills.query(withdrawal["_id"])
                except PayError as failure:
                    return Difference("bill", withdrawal["_id"], withdrawal["member_id"], wanted, None,
                                      f"WeChat Pay could not be asked: {failure.code}")
            problem = bill_problem(WithdrawalStatus(withdrawal["status"]), wanted, bill and bill.state,
                                   bill and bill.amount_fen)
            if problem is None:
                return None
            return Difference("bill", withdrawal["_id"], withdrawal["member_id"], wanted, bill and bill.amount_fen,
                              problem)

        found = await asyncio.gather(*(check(withdrawal) for withdrawal in withdrawals))
        return [difference for difference in found if difference is not None]


def _payout_movements(withdrawal: dict) -> list[Movement]:
    member_id, method = withdrawal["member_id"], withdrawal["method"]
    return [Movement(Figure.PAID, withdrawal["_id"], member_id, withdrawal["net_fen"], method),
            Movement(Figure.FEE, withdrawal["_id"], member_id, withdrawal["fee_fen"], method)]
