"""The console's orders (订单) and commissions (佣金): lists with filters, and an order's page with its chain
snapshot, events and commissions, and for a mini-program order its WeChat Pay payment and refunds, with the
refund form (Permission.MONEY; each refund in the audit log). The lists are the merchant API's (`web.pages`)."""

from __future__ import annotations

import secrets

from distribution.checkout import RefundRequest
from distribution.errors import DomainError, Invalid
from distribution.staff import Permission
from handlers.console.base import ConsoleHandler, domain_message
from handlers.console.listing import filters_of, pager, parsed, query_parameters
from handlers.orders import MerchantCommissionsQuery
from web.base import error_status
from web.models import Commission, Order, OrderRefund, OrderWithHistory
from web.pages import OrdersQuery, commission_page, order_page
from web.paging import Page

ORDERS_PATH = "/admin/orders"
COMMISSIONS_PATH = "/admin/commissions"

ORDER_STATUSES = {"created": "待支付", "paid": "已支付", "confirmed": "已确认收货", "refunded": "已退款",
                  "closed": "已关闭"}
COMMISSION_STATUSES = {"frozen": "冻结中", "settled": "已结算", "cancelled": "已取消", "clawed_back": "已追回"}
EVENT_TYPES = {"paid": "支付", "confirmed": "确认收货", "refunded": "退款", "closed": "关闭"}
EVENT_STATES = {"pending": "待处理", "waiting": "等待支付", "applied": "已处理"}
REFUND_STATUSES = {"PROCESSING": "退款中", "SUCCESS": "已退款", "CLOSED": "已关闭", "ABNORMAL": "退款异常，请处理",
                   "REFUSED": "微信支付拒绝"}
REFUND_SENT = "退款已提交微信支付"
QTY_FIELD = "qty:"
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
        await self.show_order(order_no, notice=REFUND_SENT if self.get_query_argument("refund", "") else None)

    async def show_order(self, order_no: str, status: int = 200, notice: str | None = None,
                         error: str | None = None) -> None:
        order = OrderWithHistory.from_document(await self.runtime.orders.get(order_no))
        named = await self.runtime.members.several(
            [*order.upline_chain, *(each.beneficiary_id for each in order.commissions),
             *([order.buyer_id] if order.buyer_id else [])])
        refunds = [OrderRefund.from_document(each) for each in await self.runtime.checkout.refunds_of(order_no)] \
            if order.checkout else []
        self.render_page("order.html", status=status, notice=notice, error=error, order=order, members=named,
                         statuses=ORDER_STATUSES, commission_statuses=COMMISSION_STATUSES, event_types=EVENT_TYPES,
                         event_states=EVENT_STATES, tags=STATUS_TAGS, refunds=refunds,
                         refund_statuses=REFUND_STATUSES, refund_key=secrets.token_urlsafe(12))


class OrderRefundAction(OrderPage):
    """The merchant refunds a mini-program order, whole or some units of its items, through WeChat Pay. The form
    carries a key made when it was shown: submitted twice, it is one refund."""

    action_permission = Permission.MONEY

    async def post(self, order_no: str) -> None:
        form = self.form()
        items = [{"sku": name.removeprefix(QTY_FIELD), "qty": int(value)} for name, value in form.items()
                 if name.startswith(QTY_FIELD) and value.strip().isdigit() and int(value) > 0]
        try:
            request = RefundRequest.from_dict({"items": None if form.get("whole") else items or None,
                                               "reason": form.get("reason", ""),
                                               "idempotency_key": form.get("idempotency_key", "")})
            if request.items is None and not form.get("whole"):
                raise Invalid("choose the units to refund, or the whole order", code="nothing_chosen", field="items")
            refund, created = await self.runtime.checkout.refund(order_no, request)
        except DomainError as error:
            await self.show_order(order_no, status=error_status(error) or 400, error=domain_message(error))
            return
        if created:
            await self.audit("order.refund", "order", order_no,
                             after=OrderRefund.from_document(refund).model_dump(), reason=request.reason)
        self.redirect(f"{ORDERS_PATH}/{order_no}?refund=sent", status=303)


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
    (rf"{ORDERS_PATH}/(?P<order_no>[^/]+)/refunds", OrderRefundAction),
    (rf"{ORDERS_PATH}/(?P<order_no>[^/]+)", OrderPage),
    (COMMISSIONS_PATH, CommissionsPage),
]
