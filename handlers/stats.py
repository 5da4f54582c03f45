"""Merchant API over the shop's daily stats: the dashboard's overview, and promoters ranked over a range of days."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import Field

from distribution.calendar import CHINA
from distribution.stats import MAX_RANGE_DAYS, DayRange, day_range
from handlers.merchant import MerchantHandler
from services.stats import MAX_RANKED, SORTS
from web.models import PromoterRanking, RankedPromoter, StatsOverview
from web.openapi import Reply, operation
from web.paging import Query

DEFAULT_DAYS = 7
RANGE_RULES = (f"Days are China's calendar days (UTC+8), both ends included; the range defaults to the last "
               f"{DEFAULT_DAYS} days and spans at most {MAX_RANGE_DAYS}.")


class DaysQuery(Query):
    first_day: date | None = Field(None, alias="from", description=f"default: {DEFAULT_DAYS - 1} days before to")
    last_day: date | None = Field(None, alias="to", description="default: today in China")

    def day_range(self, days: int | None = None) -> DayRange:
        """The days asked for (Invalid, naming the field, when they make no range)."""
        return day_range(self.first_day, self.last_day, days, datetime.now(CHINA).date(), DEFAULT_DAYS)


class OverviewQuery(DaysQuery):
    days: int | None = Field(None, description=f"the last `days` days up to today (1 to {MAX_RANGE_DAYS}), "
                                               f"instead of from and to")


class RankingQuery(DaysQuery):
    sort: Literal[tuple(SORTS)] = Field(  # type: ignore[valid-type]
        "commission", description="commission: net of refunds; sales: orders whose buyer was bound to the promoter")
    limit: int = Field(20, ge=1, le=MAX_RANKED)


class OverviewHandler(MerchantHandler):
    @operation("The dashboard's numbers over a range of days: sales, commissions, binds, the funnel",
               description=RANGE_RULES + " The console's dashboard shows exactly these numbers.",
               query=OverviewQuery, responses={200: Reply("The overview", StatsOverview)})
    async def get(self) -> None:
        query = self.parse_query(OverviewQuery)
        overview = await self.runtime.dashboard.overview(query.day_range(query.days))
        self.write_model(StatsOverview.of(overview))


class PromoterStatsHandler(MerchantHandler):
    @operation("Promoters ranked by commission (net of refunds), orders or sales over a range of days",
               description=RANGE_RULES, query=RankingQuery, responses={200: Reply("The ranking", PromoterRanking)})
    async def get(self) -> None:
        query = self.parse_query(RankingQuery)
        days = query.day_range()
        ranking = await self.runtime.stats.ranking(days.first, days.last, query.sort, query.limit)
        self.write_model(PromoterRanking(first_day=days.first, last_day=days.last, sort=query.sort,
                                         items=[RankedPromoter.model_validate(each, from_attributes=True)
                                                for each in ranking.rows],
                                         computed_at=ranking.computed_at))
