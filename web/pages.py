"""The lists both APIs and the console serve, a page at a time: withdrawals and commissions, of one member or of
all, and the shop's orders."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated, Self

from pydantic import Field, model_validator

from distribution.calendar import CHINA
from distribution.orders import EARLIEST, LATEST, OrderStatus
from distribution.records import InvalidField
from distribution.withdrawals import WithdrawalStatus
from services.commissions import CommissionStatus
from services.orders import OrderFilter
from services.runtime import Runtime
from web.models import Commission, Order, Withdrawal
from web.paging import Page, PageQuery, TimePageQuery, key_cursor, time_cursor


class WithdrawalsQuery(PageQuery):
    status: WithdrawalStatus | None = None


class CommissionsQuery(TimePageQuery):
    status: CommissionStatus | None = None


# The days an order may have been created on (as its times: from 2000 to 2099).
OrderDay = Annotated[date, Field(ge=EARLIEST.date(), lt=LATEST.date())]


class OrdersQuery(TimePageQuery):
    status: OrderStatus | None = None
    promoter_id: str | None = Field(None, max_length=64, description="only orders whose upline chain, as copied "
                                                                      "onto the order when it was created, names "
                                                                      "this promoter")
    direct: bool = Field(False, description="with promoter_id: only orders where the promoter is the buyer's "
                                            "nearest upline (level 1)")
    order_no: str | None = Field(None, max_length=64, description="only this order")
    first_day: OrderDay | None = Field(None, alias="from", description="only orders created (received by this "
                                                                       "server) on or after this day in China (UTC+8)")
    last_day: OrderDay | None = Field(None, alias="to", description="only orders created on or before this day in "
                                                                    "China (UTC+8)")

    @model_validator(mode="after")
    def _days_in_order(self) -> Self:
        if self.first_day and self.last_day and self.first_day > self.last_day:
            raise InvalidField("from", "must not be after to")
        return self

    def selected(self) -> OrderFilter:
        return OrderFilter(status=self.status, promoter_id=self.promoter_id, direct=self.direct,
                           order_no=self.order_no, created_from=day_start(self.first_day),
                           created_before=day_start(self.last_day + timedelta(days=1)) if self.last_day else None)


def day_start(day: date | None) -> datetime | None:
    """Midnight in China at the start of `day`."""
    return datetime.combine(day, time.min, CHINA) if day else None


async def withdrawal_page(runtime: Runtime, member_id: str | None, query: WithdrawalsQuery) -> Page[Withdrawal]:
    """Newest first; `member_id` None: everyone's."""
    documents = await runtime.withdrawals.page(member_id, query.status, query.limit, query.cursor)
    return Page[Withdrawal].of(documents, query.limit, Withdrawal.from_document, key_cursor())


async def commission_page(runtime: Runtime, member_id: str | None, query: CommissionsQuery,
                          order_no: str | None = None) -> Page[Commission]:
    """Newest first; `member_id` None: everyone's."""
    documents = await runtime.commissions.page(member_id, query.status, order_no, query.limit, query.cursor)
    return Page[Commission].of(documents, query.limit, Commission.from_document, time_cursor("created_at"))


async def order_page(runtime: Runtime, query: OrdersQuery) -> Page[Order]:
    """Newest first by the time each order reached this server."""
    documents = await runtime.orders.page(query.selected(), query.limit, query.cursor)
    return Page[Order].of(documents, query.limit, Order.from_document, time_cursor("created_at"))
