"""Merchant API over orders: orders and their events from the shop's system, commissions.

Thin: parsing and answering here, everything else in `services.orders`.
"""

from __future__ import annotations

from pydantic import Field

from distribution.checkout import RefundRequest
from distribution.orders import NewEvent, NewOrder
from handlers.merchant import MerchantHandler
from web.models import Answer, Commission, Order, OrderRefund, OrderWithHistory, ReceivedOrderEvent
from web.openapi import Reply, operation
from web.pages import CommissionsQuery, OrdersQuery, commission_page, order_page
from web.paging import Page


class OrdersHandler(MerchantHandler):
    @operation("Orders, newest first by when they reached this server",
               description="Filters combine: status, a promoter (anywhere in the upline chain copied onto the order "
                           "when it was created, or with direct=true only as the buyer's nearest upline), a range "
                           "of China days (UTC+8) of the order's creation here, and an exact order_no.",
               query=OrdersQuery, responses={200: Reply("A page of orders", Page[Order])})
    async def get(self) -> None:
        self.write_model(await order_page(self.runtime, self.parse_query(OrdersQuery)))

    @operation("Record an order from the shop's system; idempotent by order_no",
               description="The buyer's upline chain is copied onto the order now: a later re-bind never moves "
                           "its commissions. With paid_at the order is paid as it is created. A replay with the "
                           "same content returns the stored order (200); other content under the same order_no "
                           "is refused (409).",
               body=NewOrder, responses={201: Reply("The order, created", Order),
                                         200: Reply("The order as first created (a replay)", Order)},
               errors=(409,))
    async def post(self) -> None:
        received = await self.runtime.orders.create(self.parse_body(NewOrder))
        self.write_model(Order.from_document(received.document), status=201 if received.created else 200)


class OrderHandler(MerchantHandler):
    @operation("An order with its commissions and events",
               responses={200: Reply("The order", OrderWithHistory)}, errors=(404,))
    async def get(self, order_no: str) -> None:
        self.write_model(OrderWithHistory.from_document(await self.runtime.orders.get(order_no)))


class OrderEventsHandler(MerchantHandler):
    @operation("An event of the order (paid, confirmed, refunded, closed); idempotent by event_id",
               description="Stored and applied by the worker in the events' logical order (paid, confirmed, "
                           "refunded, closed): a confirmation or refund that arrives before the payment waits "
                           "for it. 202 when new, 200 for a replay (nothing changes), 409 for other content "
                           "under a known event_id.",
               body=NewEvent, responses={202: Reply("Received; the worker applies it", ReceivedOrderEvent),
                                         200: Reply("Received before (a replay)", ReceivedOrderEvent)},
               errors=(404, 409))
    async def post(self, order_no: str) -> None:
        received = await self.runtime.orders.receive_event(order_no, self.parse_body(NewEvent))
        self.write_model(ReceivedOrderEvent.from_received(received.document, received.created),
                         status=202 if received.created else 200)


class OrderRefunds(Answer):
    items: list[OrderRefund] = Field(description="oldest first")


class OrderRefundsHandler(MerchantHandler):
    @operation("The refunds of a mini-program order through WeChat Pay",
               responses={200: Reply("Its refunds", OrderRefunds)}, errors=(404,))
    async def get(self, order_no: str) -> None:
        await self.runtime.orders.get(order_no)
        refunds = await self.runtime.checkout.refunds_of(order_no)
        self.write_model(OrderRefunds(items=[OrderRefund.from_document(refund) for refund in refunds]))

    @operation("Refund a mini-program order, whole or some items, through WeChat Pay; idempotent by idempotency_key",
               description="Only orders placed and paid in the mini-program (409 not_a_checkout_order for the shop's "
                           "own orders: report their refunds as a refunded event). The amount is the items' share "
                           "of what was paid, never more than is left. 201 when sent now (usually PROCESSING: "
                           "WeChat Pay's callback, or the worker's query, ends it), 200 for a replay; 409 "
                           "refund_refused when WeChat Pay refuses it (recorded; the items may be refunded again).",
               body=RefundRequest, responses={201: Reply("The refund, sent", OrderRefund),
                                              200: Reply("The refund as first sent (a replay)", OrderRefund)},
               errors=(404, 409))
    async def post(self, order_no: str) -> None:
        request = self.parse_body(RefundRequest)
        refund, created = await self.runtime.checkout.refund(order_no, request)
        answer = OrderRefund.from_document(refund)
        if created:
            await self.audit("order.refund", "order", order_no, after=answer.model_dump(), reason=request.reason)
        self.write_model(answer, status=201 if created else 200)


class MerchantCommissionsQuery(CommissionsQuery):
    member_id: str | None = Field(None, max_length=64, description="only this promoter's")
    order_no: str | None = Field(None, max_length=64, description="only this order's")


class CommissionsHandler(MerchantHandler):
    @operation("Commissions, newest first, of one promoter, one order and/or in one status",
               query=MerchantCommissionsQuery, responses={200: Reply("A page of commissions", Page[Commission])})
    async def get(self) -> None:
        query = self.parse_query(MerchantCommissionsQuery)
        self.write_model(await commission_page(self.runtime, query.member_id, query, query.order_no))
