"""Merchant API over the promoters' daily stats: rankings over a range of days."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Literal

from pydantic import Field

from distribution.calendar import CHINA
from distribution.errors import Invalid
from handlers.merchant import MerchantHandler
from services.stats import MAX_RANGE_DAYS, SORTS
from web.models import PromoterRanking, RankedPromoter
from web.openapi import Reply, operation
from web.paging import Query

MAX_RANKED = 100
DEFAULT_DAYS = 7


class RankingQuery(Query):
    first_day: date | None = Field(None, alias="from", description=f"default: {DEFAULT_DAYS - 1} days before to")
    last_day: date | None = Field(None, alias="to", description="default: today in China")
    sort: Literal[tuple(SORTS)] = Field(  # type: ignore[valid-type]
        "commission", description="commission: net of refunds")
    limit: int = Field(20, ge=1, le=MAX_RANKED)


class PromoterStatsHandler(MerchantHandler):
    @operation("Promoters ranked by commission (net of refunds) or orders over a range of days",
               description=f"Days are China's calendar days (UTC+8), both ends included; the range defaults to "
                           f"the last {DEFAULT_DAYS} days and spans at most {MAX_RANGE_DAYS}.",
               query=RankingQuery, responses={200: Reply("The ranking", PromoterRanking)})
    async def get(self) -> None:
        query = self.parse_query(RankingQuery)
        last = query.last_day or datetime.now(CHINA).date()
        if last < date.min + timedelta(days=MAX_RANGE_DAYS):
            raise Invalid("to is before any day this shop could have", field="to")
        first = query.first_day or last - timedelta(days=DEFAULT_DAYS - 1)
        if first > last:
            raise Invalid("from must not be after to", field="from")
        if (last - first).days + 1 > MAX_RANGE_DAYS:
            raise Invalid(f"the range spans at most {MAX_RANGE_DAYS} days", field="from")
        ranked = await self.runtime.stats.ranking(first, last, query.sort, query.limit)
        self.write_model(PromoterRanking(first_day=first, last_day=last, sort=query.sort,
                                         items=[RankedPromoter.model_validate(each, from_attributes=True)
                                                for each in ranked]))
