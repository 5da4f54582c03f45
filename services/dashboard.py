"""The dashboard (概况): the shop's numbers over a range of China days, read by one call that the console's
page and the merchant API (`GET /api/merchant/v1/stats/overview`) both make, so they show the same.

Nothing here grows with the number of members: the shop's daily totals over the range (a few documents a
day), the ledger's totals of all time less those of the days after the range (none, for a range ending
today), the poster templates' totals over the range, the promoters' rankings, and indexed counts of the
applications and withdrawals that wait for review (a small set). The rankings of today and of the last 7
and 30 days are those the worker keeps (`services.stats`); those of a chosen range read the days of the
promoters active in it, which grows with them.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime

from pymongo.asynchronous.database import AsyncDatabase

from distribution.applications import ApplicationStatus
from distribution.ledger import Bucket
from distribution.stats import DayRange, Funnel, balance_fen, earned_commission_fen, paid_out_fen
from distribution.withdrawals import WithdrawalStatus
from services.stats import Ranked, StatsService
from stores.applications import ApplicationStore
from stores.funnel import FunnelStore
from stores.withdrawals import WithdrawalStore

TOP_PROMOTERS = 10
BY_COMMISSION, BY_SALES = "commission", "sales"  # the rankings shown (`services.stats.SORTS`)


@dataclass(frozen=True)
class DayTrend:
    day: date
    sales_fen: int
    commission_fen: int
    binds: int
    new_promoters: int


@dataclass(frozen=True)
class TemplateFunnel:
    template_id: str
    funnel: Funnel


@dataclass(frozen=True)
class Overview:
    days: DayRange
    sales_fen: int  # paid totals of orders whose buyer was bound to a promoter
    commission_fen: int  # commissions earned in the range, net of refunds
    frozen_fen: int  # commissions not settled yet, at the end of the range
    withdrawable_fen: int  # settled and not withdrawn, at the end of the range (net of clawed-back debts)
    paid_out_fen: int  # withdrawals paid in the range
    new_promoters: int
    binds: int
    pending_applications: int
    pending_withdrawals: int
    trend: list[DayTrend]
    funnel: Funnel
    top_promoters: list[Ranked]  # those who earned, most first (net of refunds)
    promoter_funnels: list[Ranked]  # those with anything in their funnel, most sales first
    rankings_computed_at: datetime  # of the older of the two rankings above
    template_funnels: list[TemplateFunnel]  # by sales


def promoter_funnel(ranked: Ranked) -> Funnel:
    return Funnel(scans=ranked.scans, visits=ranked.visits, binds=ranked.new_direct_members, buyers=ranked.buyers,
                  sales_fen=ranked.sales_fen)


def _added(rows: Iterable[Mapping[str, int]]) -> Counter:
    """The rows' counters added up, negative ones too (which `Counter.__add__` would drop)."""
    total: Counter = Counter()
    for row in rows:
        total.update(row)
    return total


class DashboardService:
    def __init__(self, db: AsyncDatabase, stats: StatsService):
        self.totals = FunnelStore(db)
        self.stats = stats
        self.applications = ApplicationStore(db)
        self.withdrawals = WithdrawalStore(db)

    async def overview(self, days: DayRange, top: int = TOP_PROMOTERS) -> Overview:
        first, last = days.first.isoformat(), days.last.isoformat()
        per_day, at_end, templates, ranked, applications, withdrawals = await asyncio.gather(
            self.totals.shop_days(first, last),
            self.totals.ledger_at_end_of(last),
            self.totals.templates(first, last),
            self.stats.rankings(days.first, days.last, [BY_COMMISSION, BY_SALES], top),
            self.applications.count(ApplicationStatus.PENDING),
            self.withdrawals.count(WithdrawalStatus.PENDING_REVIEW.value),
        )
        in_range = _added(per_day.values())
        return Overview(
            days=days,
            sales_fen=in_range["sales_fen"],
            commission_fen=earned_commission_fen(in_range),
            frozen_fen=balance_fen(at_end, Bucket.FROZEN),
            withdrawable_fen=balance_fen(at_end, Bucket.AVAILABLE),
            paid_out_fen=paid_out_fen(in_range),
            new_promoters=in_range["new_promoters"],
            binds=in_range["binds"],
            pending_applications=applications,
            pending_withdrawals=withdrawals,
            trend=[self._day(day, per_day.get(day.isoformat(), {})) for day in days.days],
            funnel=Funnel.of(in_range),
            top_promoters=[each for each in ranked[BY_COMMISSION].rows if each.net_commission_fen > 0],
            promoter_funnels=[each for each in ranked[BY_SALES].rows if promoter_funnel(each) != Funnel()],
            rankings_computed_at=min(each.computed_at for each in ranked.values()),
            template_funnels=sorted((TemplateFunnel(template_id, Funnel.of(counters))
                                     for template_id, counters in templates.items()),
                                    key=lambda each: (-each.funnel.sales_fen, -each.funnel.arrivals, each.template_id)),
        )

    @staticmethod
    def _day(day: date, totals: Mapping[str, int]) -> DayTrend:
        return DayTrend(day=day, sales_fen=totals.get("sales_fen", 0), commission_fen=earned_commission_fen(totals),
                        binds=totals.get("binds", 0), new_promoters=totals.get("new_promoters", 0))
