"""Merchant API over the promoters' daily stats: rankings over a range of days."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from web.base import ApiError
from handlers.merchant import MERCHANT_SECURITY, MerchantHandler
from web.openapi import error_responses, json_response, ref
from services.stats import CHINA, MAX_RANGE_DAYS, SORTS

MAX_RANKED = 100


def _day(handler: MerchantHandler, name: str, default: date) -> date:
    raw = handler.get_query_argument(name, "").strip()
    if not raw:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ApiError(400, "invalid", f"{name} must be a day, YYYY-MM-DD", field=name) from None


class PromoterStatsHandler(MerchantHandler):
    openapi = {
        "get": {
            "summary": "Promoters ranked by commission (net of refunds) or orders over a range of days",
            "description": "Days are China's calendar days (UTC+8), both ends included; the range defaults to "
                           "the last 7 days and spans at most 366.",
            "security": MERCHANT_SECURITY,
            "parameters": [
                {"name": "from", "in": "query", "schema": {"type": "string", "format": "date"}},
                {"name": "to", "in": "query", "schema": {"type": "string", "format": "date"}},
                {"name": "sort", "in": "query", "schema": {"type": "string", "enum": sorted(SORTS),
                                                           "default": "commission"}},
                {"name": "limit", "in": "query",
                 "schema": {"type": "integer", "minimum": 1, "maximum": MAX_RANKED, "default": 20}},
            ],
            "responses": {"200": json_response("The ranking", ref("PromoterRanking")), **error_responses(400, 401)},
        }
    }

    async def get(self) -> None:
        today = datetime.now(CHINA).date()
        last = _day(self, "to", today)
        if last < date.min + timedelta(days=MAX_RANGE_DAYS):
            raise ApiError(400, "invalid", "to is before any day this shop could have", field="to")
        first = _day(self, "from", last - timedelta(days=6))
        if first > last:
            raise ApiError(400, "invalid", "from must not be after to", field="from")
        if (last - first).days + 1 > MAX_RANGE_DAYS:
            raise ApiError(400, "invalid", f"the range spans at most {MAX_RANGE_DAYS} days", field="from")
        sort = self.get_query_argument("sort", "commission")
        if sort not in SORTS:
            raise ApiError(400, "invalid", f"sort must be one of {', '.join(sorted(SORTS))}", field="sort")
        raw_limit = self.get_query_argument("limit", "20")
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_RANKED:
            raise ApiError(400, "invalid", f"limit must be a whole number from 1 to {MAX_RANKED}", field="limit")
        ranked = await self.runtime.stats.ranking(first, last, sort, int(raw_limit))
        self.write_json({"from": first.isoformat(), "to": last.isoformat(), "sort": sort,
                         "items": [each.to_dict() for each in ranked]})
