"""Tax figures: each promoter's income paid out in a calendar year, who is above the merchant's threshold
(`settings/tax`), telling each of those once a year, and promoters' tax profiles (person or company).

A promoter above the threshold is told by a `tax_declare_reminder` notification keyed by promoter and
year: the periodic job (`notify_above_threshold`) may run in every worker at once and every hour, and each
promoter still hears of it once that year. A company's tax id is sealed at rest (`services.sealing`); only
its masked form is shown, exported or audited.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from pymongo.asynchronous.database import AsyncDatabase

from distribution.calendar import CHINA
from distribution.money import yuan
from distribution.tax import (
    AnnualIncome,
    Payout,
    TaxpayerKind,
    TaxProfile,
    TaxSettings,
    annual_incomes,
    mask_tax_id,
    year_bounds,
)
from distribution.withdrawals import WithdrawalStatus
from services.merchant_settings import MerchantSettings
from services.notifications import NotificationService
from services.sealing import Sealer
from stores.exports import ExportStore
from stores.finance import FinanceStore, entered_at
from stores.notifications import NotificationStore

REMINDER = "tax_declare_reminder"
REMINDER_NOTE = "请按规定申报个人所得税"


@dataclass(frozen=True)
class AnnualRow:
    """One promoter's year, as the list and the export show it."""

    income: AnnualIncome
    nickname: str | None
    kind: TaxpayerKind
    tax_id_masked: str | None
    above_threshold: bool


@dataclass(frozen=True)
class AnnualList:
    year: int
    threshold_fen: int
    rows: list[AnnualRow]


def reminder_key(member_id: str, year: int) -> str:
    return f"{REMINDER}:{member_id}:{year}"


class TaxService:
    def __init__(self, db: AsyncDatabase, merchant_settings: MerchantSettings, notifications: NotificationService,
                 sealer: Sealer):
        self.store = FinanceStore(db)
        self.names = ExportStore(db)
        self.notification_records = NotificationStore(db)
        self.merchant_settings = merchant_settings
        self.notifications = notifications
        self.sealer = sealer

    async def incomes(self, year: int) -> list[AnnualIncome]:
        """Every promoter paid anything in `year` (China's calendar), highest income first."""
        return annual_incomes([payout async for payout in self._payouts(year)])

    async def annual(self, year: int) -> AnnualList:
        settings = await self.merchant_settings.get(TaxSettings)
        incomes = await self.incomes(year)
        member_ids = [income.promoter_id for income in incomes]
        profiles = await self.store.tax_profiles_of(member_ids)
        nicknames = await self.names.nicknames(set(member_ids))
        rows = []
        for income in incomes:
            profile = profiles.get(income.promoter_id, {})
            rows.append(AnnualRow(income, nicknames.get(income.promoter_id),
                                  TaxpayerKind(profile.get("kind", TaxpayerKind.PERSON.value)),
                                  profile.get("tax_id_masked"), income.above(settings)))
        return AnnualList(year, settings.declare_threshold_fen, rows)

    async def notify_above_threshold(self, now: datetime) -> int:
        """Tell each promoter above the threshold this year, once; how many were told now."""
        year = now.astimezone(CHINA).year
        settings = await self.merchant_settings.get(TaxSettings)
        above = [income for income in await self.incomes(year) if income.above(settings)]
        keys = {reminder_key(income.promoter_id, year): income for income in above}
        told = await self.notification_records.recorded(list(keys))
        records = [self.notifications.member_record(
            REMINDER, key, income.promoter_id,
            {"year": str(year), "amount": yuan(income.income_fen), "note": REMINDER_NOTE}, now)
            for key, income in keys.items() if key not in told]
        new = await self.notification_records.insert(records)
        await self.notifications.enqueue(new)
        return len(new)

    async def put_profile(self, member_id: str, profile: TaxProfile, now: datetime) -> tuple[dict, dict | None]:
        """(the profile as shown now, the one it replaced as shown then): never the tax id itself."""
        fields = {"kind": profile.kind.value, "tax_id_sealed": None, "tax_id_masked": None, "updated_at": now}
        if profile.tax_id is not None:
            fields.update(tax_id_sealed=self.sealer.seal(profile.tax_id), tax_id_masked=mask_tax_id(profile.tax_id))
        before = await self.store.put_tax_profile(member_id, fields)
        return shown_profile(member_id, fields), shown_profile(member_id, before) if before else None

    async def profile(self, member_id: str) -> dict:
        found = await self.store.tax_profiles_of([member_id])
        return shown_profile(member_id, found.get(member_id) or {})

    async def _payouts(self, year: int) -> AsyncIterator[Payout]:
        start, end = year_bounds(year)
        async for withdrawal in self.store.withdrawals_moved_between([WithdrawalStatus.PAID.value], start, end):
            if start <= entered_at(withdrawal, WithdrawalStatus.PAID.value) < end:
                yield Payout(withdrawal["member_id"], withdrawal["amount_fen"], withdrawal["fee_fen"])


def shown_profile(member_id: str, stored: dict) -> dict:
    return {"member_id": member_id, "kind": stored.get("kind", TaxpayerKind.PERSON.value),
            "tax_id_masked": stored.get("tax_id_masked"), "updated_at": stored.get("updated_at")}
