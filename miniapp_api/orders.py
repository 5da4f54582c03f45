"""The buyer's orders in the mini-program: check out (prices from the catalogue), pay with wx.requestPayment,
look at them, confirm receipt. A promoter's team orders are on the team page, as before."""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field

from distribution.checkout import IdempotencyKey
from distribution.orders import OrderStatus
from distribution.records import Integer, Record, Text
from miniapp_api.auth import MiniappHandler
from miniapp_api.requests import Phone
from services.checkout import Placed
from web.models import Answer, Fen, OrderedItem, Time
from web.openapi import Reply, operation
from web.paging import Page, TimePageQuery, time_cursor


class WantedItem(Record):
    sku: Annotated[Text, Field(max_length=64)] = Field(description="The SKU's code, from the product.")
    qty: Annotated[Integer, Field(ge=1, le=999)] = Field(description="How many units.")


class Address(Record):
    """Where the goods go; stored sealed, shown to the buyer on their order."""

    name: Annotated[Text, Field(max_length=32)] = Field(description="The recipient.")
    phone: Phone = Field(description="The recipient's phone number.")
    region: Annotated[Text, Field(max_length=64)] = Field(description="Province, city and district.")
    detail: Annotated[Text, Field(max_length=200)] = Field(description="Street, building and room.")


class CheckoutRequest(Record):
    """An order of catalogue SKUs. Prices are the catalogue's: a field the request does not name (a price, a
    total) is refused, never used."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "items": [{"sku": "tea-gift-box", "qty": 2}], "idempotency_key": "c0a8f5e2-checkout-1",
        "address": {"name": "李雷", "phone": "13812345678", "region": "浙江省杭州市西湖区", "detail": "文三路 1 号"},
    }]})

    items: Annotated[tuple[WantedItem, ...], Field(min_length=1, max_length=50)] = Field(
        description="What to buy, each SKU once.")
    address: Address | None = Field(None, description="Where to send it, when it is sent.")
    idempotency_key: IdempotencyKey = Field(
        description="Made by the mini-program once per checkout: sent again (a retry), it answers the same order "
                    "and payment, never a second; with another body it is refused (409).")


class RequestPayment(Answer):
    """The parameters of wx.requestPayment, as they are passed to it."""

    appId: str
    timeStamp: str
    nonceStr: str
    package: str = Field(description="prepay_id=...")
    signType: str = Field(description="RSA")
    paySign: str


class MyOrder(Answer):
    order_no: str
    status: OrderStatus
    items: list[OrderedItem]
    total_fen: Fen
    refunded_fen: Fen = 0
    address: Address | None = None
    pay_by: Time | None = Field(None, description="while unpaid: when the order is closed unless paid")
    paid_at: Time | None = None
    confirmed_at: Time | None = None
    closed_at: Time | None = None
    created_at: Time

    @classmethod
    def of(cls, order: dict, address: dict | None) -> MyOrder:
        checkout = order.get("checkout") or {}
        pay_by = checkout.get("close_at") if order["status"] == OrderStatus.CREATED else None
        return cls.model_validate({**order, "order_no": order["_id"], "address": address, "pay_by": pay_by})


class Checkout(Answer):
    order: MyOrder
    request_payment: RequestPayment | None = Field(
        description="for wx.requestPayment while the order is unpaid; null when paid, closed, or the prepay "
                    "failed (then payment_error says why: POST /api/v1/orders/{order_no}/pay tries again)")
    payment_error: str | None = None


CHECKOUT = Reply("The order and what pays it", Checkout)


class OrdersBase(MiniappHandler):
    def my_order(self, order: dict) -> MyOrder:
        return MyOrder.of(order, self.runtime.checkout.address_of(order))

    def checkout_answer(self, placed: Placed) -> Checkout:
        return Checkout(order=self.my_order(placed.order),
                        request_payment=RequestPayment(**placed.request_payment) if placed.request_payment else None,
                        payment_error=placed.payment_error)


class MyOrdersHandler(OrdersBase):
    @operation("My orders, newest first", query=TimePageQuery,
               responses={200: Reply("A page of my orders", Page[MyOrder])})
    async def get(self) -> None:
        query = self.parse_query(TimePageQuery)
        orders = await self.runtime.checkout.my_page(self.member, query.limit, query.cursor)
        self.write_model(Page[MyOrder].of(orders, query.limit, self.my_order, time_cursor("created_at")))

    @operation("Check out: the order, priced from the catalogue, its stock reserved, and the payment's parameters",
               description="Idempotent by idempotency_key: a retry answers the same order (200). 409 out_of_stock "
                           "when a SKU has too little stock left; 400 naming items[i].sku for an unknown or "
                           "off-sale SKU. Unpaid, the order is closed after the shop's unpaid_close_minutes and "
                           "its stock released.",
               body=CheckoutRequest, responses={201: CHECKOUT, 200: Reply("The same order (a retry)", Checkout)},
               errors=(409,))
    async def post(self) -> None:
        request = self.parse_body(CheckoutRequest)
        placed = await self.runtime.checkout.place(
            self.member, [(item.sku, item.qty) for item in request.items],
            request.address.to_dict() if request.address else None, request.idempotency_key)
        self.write_model(self.checkout_answer(placed), status=201 if placed.created else 200)


class MyOrderHandler(OrdersBase):
    @operation("One of my orders", responses={200: Reply("The order", MyOrder)}, errors=(404,))
    async def get(self, order_no: str) -> None:
        self.write_model(self.my_order(await self.runtime.checkout.mine(self.member, order_no)))


class PayOrderHandler(OrdersBase):
    @operation("Fresh wx.requestPayment parameters for my unpaid order",
               description="409 not_payable when it is paid or closed; 503 when WeChat Pay does not answer.",
               responses={200: CHECKOUT}, errors=(404, 409))
    async def post(self, order_no: str) -> None:
        self.write_model(self.checkout_answer(await self.runtime.checkout.pay(self.member, order_no)))


class ConfirmOrderHandler(OrdersBase):
    @operation("Confirm I received my order: the promoters' commissions start their freeze period",
               description="Applied by the worker, once however often it is sent. 409 not_paid before payment.",
               responses={202: Reply("Received", MyOrder)}, errors=(404, 409))
    async def post(self, order_no: str) -> None:
        self.write_model(self.my_order(await self.runtime.checkout.confirm(self.member, order_no)), status=202)
