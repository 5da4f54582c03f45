"""The ledger's invariant, checked: every account's balances are exactly the sum of its entries.

`python -m bot ledger verify` runs `LedgerService.verify` and exits non-zero
on any difference. The recomputation is the domain's
(`distribution.ledger.balances_from_entries`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pymongo.asynchronous.database import AsyncDatabase

from distribution.ledger import Bucket, balances_from_entries
from stores.ledger import LedgerStore


@dataclass(frozen=True)
class Difference:
    account_id: str
    bucket: Bucket | None  # None: the account document itself is missing or has no entries
    stored_fen: int | None
    from_ledger_fen: int | None
    problem: str

    def __str__(self) -> str:
        where = f"{self.account_id}.{self.bucket.value}" if self.bucket else self.account_id
        return f"{where}: {self.problem} (stored {self.stored_fen}, ledger says {self.from_ledger_fen})"


@dataclass
class VerifyReport:
    accounts: int = 0
    entries: int = 0
    differences: list[Difference] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.differences


class LedgerService:
    def __init__(self, db: AsyncDatabase):
        self.store = LedgerStore(db)

    async def balances(self, account_id: str) -> dict[str, int]:
        return {f"{bucket.value}_fen": amount for bucket, amount in (await self.store.balances(account_id)).items()}

    async def page(self, member_id: str, limit: int, after: tuple[datetime, str] | None) -> list[dict]:
        """The member's ledger entries newest first, `limit` after the cursor `(at, _id)`."""
        return await self.store.page(member_id, limit, after)

    async def verify(self, batch: int = 10_000) -> VerifyReport:
        report = VerifyReport()
        from_ledger: dict[str, dict[Bucket, int]] = {}
        entries = []

        def add_up() -> None:
            for account_id, buckets in balances_from_entries(entries).items():
                totals = from_ledger.setdefault(account_id, dict.fromkeys(Bucket, 0))
                for bucket, amount in buckets.items():
                    totals[bucket] += amount
            report.entries += len(entries)
            entries.clear()

        async for entry in self.store.all_entries():
            entries.append(entry)
            if len(entries) >= batch:
                add_up()
        add_up()
        seen: set[str] = set()
        async for account_id, stored in self.store.all_accounts():
            report.accounts += 1
            seen.add(account_id)
            expected = from_ledger.get(account_id, dict.fromkeys(Bucket, 0))
            for bucket in Bucket:
                if stored[bucket] != expected[bucket]:
                    report.differences.append(
                        Difference(account_id, bucket, stored[bucket], expected[bucket], "balance differs from its entries")
                    )
            for bucket in (Bucket.FROZEN, Bucket.LOCKED):
                if stored[bucket] < 0:
                    report.differences.append(
                        Difference(account_id, bucket, stored[bucket], expected[bucket], "must never be negative")
                    )
        for account_id, expected in from_ledger.items():
            if account_id not in seen:
                report.differences.append(
                    Difference(account_id, None, None, sum(expected.values()), "entries without an account document")
                )
        return report
