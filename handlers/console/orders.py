"""The console's orders (订单) and commissions (佣金): lists with filters, and an order's page with its chain
snapshot, events and commissions. The lists are the merchant API's (`web.pages`)."""

from __future__ import annotations

from handlers.console.base import ConsoleHandler
from handlers.console.listing import filters_of, pager, parsed, query_parameters
from handlers.orders import MerchantCommissionsQuery
from web.models import Commission, Order, OrderWithHistory
from web.pages import OrdersQuery, commission_page, order_page
from web.paging import Page

ORDERS_PATH = "/admin/orders"
COMMISSIONS_PATH = "/admin/commissions"

ORDER_STATUSES = {"created": "待支付", "paid": "已支付", "confirmed": "已确认收货", "refunded": "已退款",
                  "closed": "已关闭"}
COMMISSION_STATUSES = {"frozen": "冻结中", "settled": "已结算", "cancelled": "已取消", "clawed_back": "已追回"}
EVENT_TYPES = {"paid": "支付", "confirmed": "确认收货", "refunded": "退款", "closed": "关闭"}
EVENT_STATES = {"pending": "待处理", "waiting": "等待支付", "applied": "已处理"}
# How each status is tagged in a list (console.css): good news, something to watch, money going back.
STATUS_TAGS = {"paid": "good", "confirmed": "good", "settled": "good", "frozen": "warn", "refunded": "bad",
               "cancelled": "bad", "clawed_back": "bad"}


def promoter_of(order: Order) -> str | None:
    """The promoter an order is brought by: the buyer's nearest upline when the order was created."""
    return order.upline_chain[0] if order.upline_chain else None


class OrdersPage(ConsoleHandler):
    async def get(self) -> None:
        parameters = query_parameters(self)
        query, errors = parsed(OrdersQuery, parameters)
        page = await order_page(self.runtime, query) if query is not None \
            else Page[Order](items=[], next_cursor=None)
        named = await self.runtime.members.several(
            [each for order in page.items for each in (order.buyer_id, promoter_of(order)) if each])
        self.render_page("orders.html", status=400 if errors else 200, errors=errors, values=filters_of(parameters),
                         orders=page.items, members=named, pager=pager(ORDERS_PATH, parameters, page.next_cursor),
                         promoter_of=promoter_of, statuses=ORDER_STATUSES, tags=STATUS_TAGS)


class OrderPage(ConsoleHandler):
    async def get(self, order_no: str) -> None:
        order = OrderWithHistory.from_document(await self.runtime.orders.get(order_no))
        named = await self.runtime.members.several(
            [*order.upline_chain, *(each.beneficiary_id for each in order.commissions),
             *([order.buyer_id] if order.buyer_id else [])])
        self.render_page("order.html", order=order, members=named, statuses=ORDER_STATUSES,
                         commission_statuses=COMMISSION_STATUSES, event_types=EVENT_TYPES, event_states=EVENT_STATES,
                         tags=STATUS_TAGS)


class CommissionsPage(ConsoleHandler):
    async def get(self) -> None:
        parameters = query_parameters(self)
        query, errors = parsed(MerchantCommissionsQuery, parameters)
        page = await commission_page(self.runtime, query.member_id, query, query.order_no) if query is not None \
            else Page[Commission](items=[], next_cursor=None)
        named = await self.runtime.members.several(each.beneficiary_id for each in page.items)
        self.render_page("commissions.html", status=400 if errors else 200, errors=errors,
                         values=filters_of(parameters), commissions=page.items, members=named,
                         pager=pager(COMMISSIONS_PATH, parameters, page.next_cursor), statuses=COMMISSION_STATUSES,
                         tags=STATUS_TAGS)


ROUTES = [
    (ORDERS_PATH, OrdersPage),
    (rf"{ORDERS_PATH}/(?P<order_no>[^/]+)", OrderPage),
    (COMMISSIONS_PATH, CommissionsPage),
]
