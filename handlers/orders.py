"""Merchant API over orders: orders and their events from the shop's system, commissions.

Thin: parsing and answering here, everything else in `services.orders`.
"""

from __future__ import annotations

from distribution.records import InvalidField
from web.base import ApiError, BaseHandler
from handlers.merchant import MERCHANT_SECURITY, MerchantHandler
from web.openapi import error_responses, json_response, ref
from web.paging import CURSOR_PARAMETER, LIMIT_PARAMETER, Paging, decode_cursor, encode_cursor, page_schema
from services.commissions import CommissionStatus, commission_json
from services.orders import ORDER_NO, OrderConflict, OrderNotFound, event_json, order_json, parse_new_order

COMMISSION_STATUSES = [status.value for status in CommissionStatus]
STATUS_PARAMETER = {"name": "status", "in": "query", "schema": {"type": "string", "enum": COMMISSION_STATUSES}}


async def write_commission_page(handler: BaseHandler | Paging, member_id: str | None) -> None:
    """A page of commissions (of one beneficiary, or all), filtered by ?status=; shared with the merchant API."""
    status = handler.get_query_argument("status", "").strip() or None
    if status is not None and status not in COMMISSION_STATUSES:
        raise ApiError(400, "invalid", f"status must be one of {', '.join(COMMISSION_STATUSES)}", field="status")
    before = decode_cursor(cursor, 1)[0] if (cursor := handler.get_query_argument("cursor", "")) else None
    limit = handler.page_limit()
    page = await handler.runtime.commissions.page(member_id, status, before, limit)
    next_cursor = encode_cursor(page[-1]["sort_key"]) if len(page) == limit else None
    handler.write_json({"items": [commission_json(each) for each in page], "next_cursor": next_cursor})


_ORDER_NO_SCHEMA = {"type": "string", "pattern": ORDER_NO.pattern, "maxLength": 64}


def _invalid(error: InvalidField) -> ApiError:
    return ApiError(400, "invalid", str(error), field=error.field)


def _known_order_no(order_no: str) -> str:
    if not ORDER_NO.fullmatch(order_no):
        raise ApiError(404, "order_not_found", f"no order {order_no}")
    return order_no


class OrdersHandler(MerchantHandler):
    openapi = {
        "post": {
            "summary": "Record an order from the shop's system; idempotent by order_no",
            "description": "The buyer's upline chain is copied onto the order now: a later re-bind never moves "
                           "its commissions. With paid_at the order is paid as it is created. A replay with the "
                           "same content returns the stored order (200); other content under the same order_no "
                           "is refused (409).",
            "security": MERCHANT_SECURITY,
            "requestBody": {"required": True, "content": {"application/json": {"schema": ref("NewOrder")}}},
            "responses": {
                "201": json_response("The order, created", ref("Order")),
                "200": json_response("The order as first created (a replay)", ref("Order")),
                **error_responses(400, 401, 409),
            },
        }
    }

    async def post(self) -> None:
        try:
            new = parse_new_order(self.json_body())
        except InvalidField as invalid:
            raise _invalid(invalid) from None
        try:
            received = await self.runtime.orders.create(new)
        except OrderConflict as conflict:
            raise ApiError(409, "conflict", str(conflict), field="order_no") from None
        self.write_json(order_json(received.document), status=201 if received.created else 200)


class OrderHandler(MerchantHandler):
    path_schemas = {"order_no": _ORDER_NO_SCHEMA}
    openapi = {
        "get": {
            "summary": "An order with its commissions and events",
            "security": MERCHANT_SECURITY,
            "responses": {"200": json_response("The order", ref("Order")), **error_responses(401, 404)},
        }
    }

    async def get(self, order_no: str) -> None:
        order = await self.runtime.orders.get(_known_order_no(order_no))
        if order is None:
            raise ApiError(404, "order_not_found", f"no order {order_no}")
        self.write_json(order)


class OrderEventsHandler(MerchantHandler):
    path_schemas = {"order_no": _ORDER_NO_SCHEMA}
    openapi = {
        "post": {
            "summary": "An event of the order (paid, confirmed, refunded, closed); idempotent by event_id",
            "description": "Stored and applied by the worker in the events' logical order (paid, confirmed, "
                           "refunded, closed): a confirmation or refund that arrives before the payment waits "
                           "for it. 202 when new, 200 for a replay (nothing changes), 409 for other content "
                           "under a known event_id.",
            "security": MERCHANT_SECURITY,
            "requestBody": {"required": True, "content": {"application/json": {"schema": ref("NewOrderEvent")}}},
            "responses": {
                "202": json_response("Received; the worker applies it", ref("OrderEvent")),
                "200": json_response("Received before (a replay)", ref("OrderEvent")),
                **error_responses(400, 401, 404, 409),
            },
        }
    }

    async def post(self, order_no: str) -> None:
        body = self.json_body()
        try:
            received = await self.runtime.orders.receive_event(_known_order_no(order_no), body)
        except OrderNotFound:
            raise ApiError(404, "order_not_found", f"no order {order_no}") from None
        except InvalidField as invalid:
            raise _invalid(invalid) from None
        except OrderConflict as conflict:
            raise ApiError(409, "conflict", str(conflict), field="event_id") from None
        self.write_json({"order_no": order_no, **event_json(received.document), "duplicate": not received.created},
                        status=202 if received.created else 200)


class CommissionsHandler(MerchantHandler, Paging):
    openapi = {
        "get": {
            "summary": "Commissions, newest first, of one promoter and/or in one status",
            "security": MERCHANT_SECURITY,
            "parameters": [{"name": "member_id", "in": "query", "schema": {"type": "string"}},
                           STATUS_PARAMETER, CURSOR_PARAMETER, LIMIT_PARAMETER],
            "responses": {"200": json_response("A page of commissions", page_schema(ref("Commission"))),
                          **error_responses(400, 401)},
        }
    }

    async def get(self) -> None:
        await write_commission_page(self, self.get_query_argument("member_id", "").strip() or None)


__all__ = ["CommissionsHandler", "OrderEventsHandler", "OrderHandler", "OrdersHandler", "order_json"]
