"""Counting the funnel as it happens: per China day, for the promoter, the poster template and the shop.

- A scan (an official-account code followed or scanned, a mini-program code opened) or a visit (a share link
  opened) of an existing promoter's code is recorded on its own, once the push or page has done its work
  (WeChat's retries of a push are answered without running it again, `bot.dedup`, and a push whose work
  failed records nothing before it is retried), and counted by the worker within a second.
- A paid order whose buyer was bound when it was created adds its total to the sales of the promoter its chain
  starts at (and of the template the buyer was bound through); the buyer's first such order also counts the
  buyer. Both are planned into the order's own transaction, so a replayed event counts nothing again.
- Binds and new promoters are counted from the bind log (`services.stats.StatsService.count_binds`).

A template counts only while the merchant offers it: a scene or link naming another template (made up, or
removed since) counts for the promoter and the shop alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pymongo.asynchronous.database import AsyncDatabase

from distribution.calendar import china_day
from distribution.poster_settings import PosterSettings
from services.merchant_settings import MerchantSettings
from stores.funnel import DAILY_TOTALS, FIRST_PAID_ORDER, FIRSTS, FunnelStore, first_mark, shop_update, template_update
from stores.stats import PROMOTER_DAILY, daily_update
from stores.writes import WriteSet


class FunnelService:
    def __init__(self, db: AsyncDatabase, merchant_settings: MerchantSettings):
        self.store = FunnelStore(db)
        self.merchant_settings = merchant_settings

    async def offered_template(self, template_id: str | None) -> str | None:
        """`template_id` if the merchant offers that poster template now, else None."""
        if template_id is None:
            return None
        return template_id if template_id in (await self.merchant_settings.get(PosterSettings)).templates else None

    async def scanned(self, promoter_id: str, template_id: str | None, at: datetime) -> None:
        await self.store.record(promoter_id, template_id, china_day(at), "scans", at)

    async def visited(self, promoter_id: str, template_id: str | None, at: datetime) -> None:
        await self.store.record(promoter_id, template_id, china_day(at), "visits", at)

    async def counted_buyers(self, orders: Iterable[dict]) -> set[str]:
        """Those of the buyers of `orders` (about to be paid) whose first paid order was counted: one read for
        a batch of payments, for `plan_paid`."""
        buyer_ids = sorted({order["buyer_id"] for order in orders if _counts(order)})
        return await self.store.marked(FIRST_PAID_ORDER, buyer_ids) if buyer_ids else set()

    def plan_paid(self, order: dict, at: datetime, writes: WriteSet, counted: set[str]) -> None:
        """Count the paid order's sales (and its buyer, if this is their first) in the order's transaction.
        `counted` (`counted_buyers`) learns the buyer this counts, so that another of their orders paid in the
        same batch does not count them again."""
        if not _counts(order):
            return
        buyer_id, promoter_id, template_id = order["buyer_id"], order["upline_chain"][0], order.get("upline_template")
        increments = {"sales_fen": order["total_fen"]}
        if buyer_id not in counted:
            counted.add(buyer_id)
            # Another of the buyer's orders counting them meanwhile fails this transaction on the mark: the order
            # is planned again, and finds the buyer counted.
            writes.insert(FIRSTS, [first_mark(FIRST_PAID_ORDER, buyer_id, at)])
            increments["buyers"] = 1
        day = china_day(at)
        writes.update(PROMOTER_DAILY, daily_update(promoter_id, day, increments))
        writes.update(DAILY_TOTALS, shop_update(day, order["_id"], increments))
        if template_id is not None:
            writes.update(DAILY_TOTALS, template_update(template_id, day, order["_id"], increments))


def _counts(order: dict) -> bool:
    """A paid order counts in the funnel when its buyer was bound as it was created."""
    return bool(order.get("buyer_id") and order["upline_chain"])
