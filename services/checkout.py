"""The mini-program's own checkout: orders placed and paid in WeChat, closed when unpaid, confirmed, refunded.

Every step lands in the existing orders pipeline (`services.orders`), so commissions, the ledger, stats and
notifications follow exactly as for the merchant's own orders:

- `place` prices the items from the catalogue (never from the client), reserves their stock once per order,
  creates the order through `OrderService.create` (the buyer's chain snapshotted as for any order, the
  checkout's own fields stored with it in the same insert) and asks WeChat Pay for a prepay. The order
  number comes from the buyer and the idempotency key, so a retry finds the same order, reservation and
  prepay; a retry with another body is a conflict. A prepay that fails leaves an unpaid order that `pay`
  (or the same retry) asks again for: nothing is half done.
- WeChat Pay's payment callback, or a query when it was lost, becomes the order's `paid` event under the
  transaction's id, so however often it arrives it is applied once. A payment that does not match the order
  (amount, merchant, app) is flagged on the order for the merchant, never applied.
- The worker's periodic `advance` closes unpaid orders past their close time (asking WeChat Pay first: a
  payment found is applied instead; then closing it there, `ORDERPAID` meaning paid after all), releasing
  their stock once; confirms paid orders the buyer left unconfirmed (`confirmed` event); and asks about
  refunds whose callback has not come.
- A refund (the merchant's, of the whole order or some items) reserves the units it gives back on the order
  by a guarded update, so two refunds never give back more than was paid; it is sent to WeChat Pay under
  an `out_refund_no` made from the merchant's idempotency key. Its success becomes the `refunded` event
  (the pipeline cancels or claws back commissions pro rata) and the items go back into stock, once each.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TypeVar

from pymongo import AsyncMongoClient, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from distribution import errors
from distribution.checkout import (
    SOURCE,
    CheckoutSettings,
    RefundLine,
    RefundRequest,
    checkout_order_no,
    out_refund_no_of,
    out_trade_no_of,
    payment_description,
    payment_problem,
    plan_refund,
    request_hash,
)
from distribution.commission import OrderItem
from distribution.orders import Buyer, EventType, NewEvent, NewOrder, OrderStatus
from distribution.orders import RefundLine as RefundedSku
from services.catalogue import CatalogueService
from services.merchant_settings import MerchantSettings
from services.orders import OrderConflict, OrderNotFound, OrderService
from services.sealing import Sealer
from services.turns import Turns
from stores.orders import ORDERS, OrderStore
from stores.refunds import ORDER_REFUNDS, UNDER_WAY, RefundStore
from stores.writes import Conflict, WriteSet, commit
from wechatpay import (
    REFUND_EVENTS,
    TRANSACTION_SUCCESS,
    CallbackRejected,
    PayError,
    PayRefused,
    PayUnclear,
    Refund,
    Refunds,
    Transaction,
    Transactions,
    refund_of,
    transaction_of,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

PAID_STATES = frozenset({"SUCCESS", "REFUND"})  # REFUND: paid, then (partly) refunded
CLOSE_EVENT = "close-unpaid"
BUYER_CONFIRMED_EVENT = "buyer-confirmed"
AUTO_CONFIRMED_EVENT = "auto-confirmed"
# A refund under way is asked about this long after it was last heard of, in case its callback was lost.
REFUND_CHECK_AFTER = timedelta(minutes=5)
PLANNING_ATTEMPTS = 5
DUE_LIMIT = 100


class CheckoutConflict(errors.Conflict):
    code = "idempotency_conflict"


class CheckoutRefused(errors.Refused):
    def __init__(self, code: str, message: str, field: str | None = None):
        super().__init__(message, code=code, field=field)


class PaymentUnavailable(errors.Unavailable):
    code = "wechat_pay_unavailable"


@dataclass(frozen=True)
class Placed:
    order: dict
    request_payment: dict[str, str] | None  # wx.requestPayment's parameters; None when not payable now
    payment_error: str | None = None  # why there are none for an unpaid order (the prepay failed: pay again)
    created: bool = True


def _event_id(prefix: str, reference: str) -> str:
    return f"{prefix}:{reference}"


class CheckoutService:
    def __init__(self, client: AsyncMongoClient, db: AsyncDatabase, orders: OrderService,
                 catalogue: CatalogueService, transactions: Transactions | None, refunds: Refunds | None,
                 merchant_settings: MerchantSettings, sealer: Sealer):
        self.client = client
        self.db = db
        self.orders = orders
        self.catalogue = catalogue
        self.transactions = transactions  # None: WeChat Pay is not configured, and checkout is refused
        self.refunds = refunds
        self.merchant_settings = merchant_settings
        self.sealer = sealer
        self.store = OrderStore(db)
        self.refund_store = RefundStore(db)
        self.sku_turns = Turns()

    # --- the buyer ---------------------------------------------------------------------------------

    async def place(self, member: dict, wanted: Sequence[tuple[str, int]], address: Mapping | None,
                    idempotency_key: str, now: datetime | None = None) -> Placed:
        """The member's order of `wanted` (sku, qty) and what pays it; the same again for a retry."""
        now = now or _now()
        transactions = self._transactions()
        order_no = checkout_order_no(member["_id"], idempotency_key)
        fingerprint = request_hash(wanted, address)
        existing = await self.store.order(order_no)
        if existing is not None:
            return await self._again(existing, fingerprint, now)
        if not member.get("miniapp_openid"):
            raise CheckoutRefused("no_miniapp_openid", "log in through the mini-program to pay there")
        priced = await self.catalogue.priced_items(wanted)
        reservation_id = f"order:{order_no}"
        if not await self._reserve(reservation_id, wanted):
            raise CheckoutRefused("out_of_stock", "some of the items are not in stock any more", field="items")
        settings = await self.merchant_settings.get(CheckoutSettings)
        new = NewOrder(order_no=order_no, buyer=Buyer(member_id=member["_id"]),
                       items=tuple(OrderItem.from_dict(item.order_item()) for item in priced))
        checkout = {
            "source": SOURCE, "member_id": member["_id"], "request_hash": fingerprint,
            "out_trade_no": out_trade_no_of(order_no), "reservation_id": reservation_id,
            "address_sealed": self.sealer.seal(json.dumps(dict(address), ensure_ascii=False)) if address else None,
            "description": payment_description([item.title for item in priced], settings.description_prefix),
            "payer_openid": member["miniapp_openid"], "close_at": now + timedelta(minutes=settings.unpaid_close_minutes),
            "confirm_at": None, "prepay_id": None, "transaction_id": None, "payment_problem": None,
            "refund_qty": [0] * len(priced),
        }
        try:
            received = await self.orders.create(new, now, checkout)
        except Exception:
            if await self.store.order(order_no) is None:  # not stored: the stock goes back at once
                await self.catalogue.release(reservation_id)
            raise
        if not received.created:  # the same checkout, sent twice at once
            return await self._again(received.document, fingerprint, now)
        log.info("checkout %s placed: %d fen", order_no, received.document["total_fen"])
        return await self._payable(received.document, transactions, now, reuse=False)

    async def _reserve(self, reservation_id: str, wanted: Sequence[tuple[str, int]]) -> bool:
        """The catalogue's reservation, its SKUs' turns taken within this process (`services.turns`)."""
        async with self.sku_turns.one_at_a_time(*(sku for sku, _ in wanted)):
            return await self.catalogue.reserve(reservation_id, wanted)

    async def pay(self, member: dict, order_no: str, now: datetime | None = None) -> Placed:
        """Fresh wx.requestPayment parameters for the member's unpaid order; CheckoutRefused when it is not
        payable, PaymentUnavailable when WeChat Pay does not make the prepay now."""
        now = now or _now()
        transactions = self._transactions()
        order = await self.mine(member, order_no)
        placed = await self._payable(order, transactions, now, reuse=False)
        if placed.request_payment is None:
            if placed.payment_error is not None:
                raise PaymentUnavailable(placed.payment_error)
            raise CheckoutRefused("not_payable", "the order is paid, closed or past its time to pay: nothing to pay")
        return placed

    async def mine(self, member: dict, order_no: str) -> dict:
        """The member's own order (OrderNotFound for anyone else's)."""
        order = await self.store.order(order_no)
        if order is None or order.get("buyer_id") != member["_id"]:
            raise OrderNotFound(f"no order {order_no}")
        return order

    async def my_page(self, member: dict, limit: int, after: tuple[datetime, str] | None,
                      now: datetime | None = None) -> list[dict]:
        return await self.store.buyer_page(member["_id"], limit, after, now or _now())

    async def confirm(self, member: dict, order_no: str, now: datetime | None = None) -> dict:
        """The buyer confirms receipt: the `confirmed` event (the commissions' freeze period starts)."""
        order = await self.mine(member, order_no)
        if not order.get("checkout"):
            raise CheckoutRefused("not_a_checkout_order", "this order is confirmed by the shop's own system")
        if order.get("confirmed_at") is None and order["status"] not in (OrderStatus.PAID, OrderStatus.CONFIRMED):
            raise CheckoutRefused("not_paid", f"the order is {order['status']}: only a paid order is confirmed")
        await self._event(order_no, NewEvent(event_id=BUYER_CONFIRMED_EVENT, type=EventType.CONFIRMED), now)
        return order

    def address_of(self, order: dict) -> dict | None:
        sealed = (order.get("checkout") or {}).get("address_sealed")
        return json.loads(self.sealer.open(sealed)) if sealed else None

    async def _again(self, order: dict, fingerprint: str, now: datetime) -> Placed:
        if (order.get("checkout") or {}).get("request_hash") != fingerprint:
            raise CheckoutConflict("this idempotency_key was used before for another order", field="idempotency_key")
        placed = await self._payable(order, self._transactions(), now, reuse=True)
        return Placed(placed.order, placed.request_payment, placed.payment_error, created=False)

    async def _payable(self, order: dict, transactions: Transactions, now: datetime, reuse: bool) -> Placed:
        """The order with what pays it while it is unpaid and open: the stored prepay (`reuse`) or a new one."""
        checkout = order["checkout"]
        if order["status"] != OrderStatus.CREATED or checkout.get("payment_problem") or now >= checkout["close_at"]:
            return Placed(order, None)
        if reuse and checkout.get("prepay_id"):
            return Placed(order, transactions.request_payment(checkout["prepay_id"]))
        try:
            prepay_id = await transactions.create_jsapi(checkout["out_trade_no"], checkout["description"],
                                                        order["total_fen"], checkout["payer_openid"],
                                                        time_expire=checkout["close_at"])
        except PayRefused as refused:
            if refused.code == "ORDERPAID":  # paid while its callback is on its way
                await self._look_up_payment(order, now)
                return Placed(order, None)
            log.error("WeChat Pay refused the prepay of %s: %s", order["_id"], refused)
            return Placed(order, None, f"WeChat Pay refused the payment: {refused.message}")
        except PayError as failure:
            log.warning("no prepay for %s: %s", order["_id"], failure)
            return Placed(order, None, "WeChat Pay did not answer; pay again in a moment")
        await self.store.set_checkout(order["_id"], {"prepay_id": prepay_id})
        order = {**order, "checkout": {**checkout, "prepay_id": prepay_id}}
        return Placed(order, transactions.request_payment(prepay_id))

    # --- payments --------------------------------------------------------------------------------------

    async def receive_payment_notice(self, headers: Mapping[str, str], body: bytes, now: datetime) -> str:
        """WeChat Pay's payment callback: verified, opened, applied once. CallbackRejected when it is not
        WeChat Pay's, not fresh, or not a transaction; nothing changes then."""
        event_type, transaction = await _opened(self.transactions, headers, body, {TRANSACTION_SUCCESS},
                                                transaction_of)
        if transaction is None:
            return f"ignored {event_type}"
        order = await self.store.by_out_trade_no(transaction.out_trade_no)
        if order is None:
            log.warning("a payment of an order that is not ours: %s", transaction.out_trade_no)
            return "not ours"
        return await self._apply_payment(order, transaction, now)

    async def _look_up_payment(self, order: dict, now: datetime) -> str | None:
        """Ask WeChat Pay about the order; apply a payment found. None when it is not paid there."""
        transaction = await self.transactions.query(order["checkout"]["out_trade_no"])
        if transaction is None or transaction.trade_state not in PAID_STATES:
            return None
        return await self._apply_payment(order, transaction, now)

    async def _apply_payment(self, order: dict, transaction: Transaction, now: datetime) -> str:
        if transaction.trade_state not in PAID_STATES:
            return f"not paid: {transaction.trade_state}"
        problem = payment_problem(order["total_fen"], self.transactions.client.mch_id, self.transactions.appid,
                                  transaction.total_fen, transaction.mch_id, transaction.appid)
        if problem is None and not transaction.transaction_id:
            problem = "a payment without a transaction id"
        if problem is None and order["status"] == OrderStatus.CLOSED:
            problem = "paid after the order was closed"
        if problem is not None:
            # The merchant settles it with the buyer: the order is no longer closed for being unpaid.
            await self.store.set_checkout(order["_id"], {"payment_problem": problem, "close_at": None,
                                                         "problem_transaction_id": transaction.transaction_id})
            log.error("order %s: a payment not applied: %s", order["_id"], problem)
            return f"flagged: {problem}"
        settings = await self.merchant_settings.get(CheckoutSettings)
        paid_at = transaction.success_time
        confirm_at = (paid_at or now) + timedelta(days=settings.auto_confirm_days)
        await self.store.set_checkout(order["_id"], {"transaction_id": transaction.transaction_id,
                                                     "confirm_at": confirm_at}, unless_set="transaction_id")
        await self._event(order["_id"], NewEvent(event_id=_event_id("pay", transaction.transaction_id),
                                                 type=EventType.PAID, at=paid_at), now)
        return "paid"

    async def _event(self, order_no: str, event: NewEvent, now: datetime | None) -> str:
        try:
            received = await self.orders.receive_event(order_no, event, now)
        except OrderConflict:
            # Told again with another time (a query's answer after a callback's): the event is in already.
            return f"{event.type} received before"
        return f"{event.type} received" if received.created else f"{event.type} received before"

    # --- the worker's rounds -----------------------------------------------------------------------------

    async def advance(self, now: datetime | None = None, limit: int = DUE_LIMIT) -> dict[str, int]:
        """Close unpaid orders past their time, confirm paid ones left unconfirmed, ask about refunds under
        way: what each found to do."""
        now = now or _now()
        if self.transactions is None or self.refunds is None:
            return {}
        closing = await self.store.checkout_due(OrderStatus.CREATED, "close_at", now, limit)
        for order in closing:
            await self._each("unpaid order", order["_id"], self._close_unpaid(order, now))
        confirming = await self.store.checkout_due(OrderStatus.PAID, "confirm_at", now, limit)
        for order in confirming:
            confirmation = NewEvent(event_id=AUTO_CONFIRMED_EVENT, type=EventType.CONFIRMED,
                                    at=order["checkout"]["confirm_at"])
            await self._each("paid order", order["_id"], self._event(order["_id"], confirmation, now))
        refunds = await self.refund_store.due(now, limit)
        for refund in refunds:
            await self._each("refund", refund["_id"], self._check_refund(refund, now))
        return {"closed": len(closing), "confirmed": len(confirming), "refunds_checked": len(refunds)}

    @staticmethod
    async def _each(what: str, key: str, step: Awaitable[str]) -> None:
        """One item of a round: one the domain refuses is logged, and never holds up those after it."""
        try:
            log.info("%s %s: %s", what, key, await step)
        except errors.DomainError as refused:
            log.error("%s %s: %s", what, key, refused.message)

    async def _close_unpaid(self, order: dict, now: datetime) -> str:
        out_trade_no = order["checkout"]["out_trade_no"]
        try:
            if (outcome := await self._look_up_payment(order, now)) is not None:
                return outcome
            try:
                await self.transactions.close(out_trade_no)
            except PayRefused as refused:
                if refused.code != "ORDERPAID":
                    raise
                return await self._look_up_payment(order, now) or "paid, but not found paid"
        except PayError as failure:
            return f"tried again later: {failure}"
        # Closed at WeChat Pay: nobody can pay it any more, so its stock may go back before the pipeline closes it.
        await self.catalogue.release(order["checkout"]["reservation_id"])
        await self._event(order["_id"], NewEvent(event_id=CLOSE_EVENT, type=EventType.CLOSED), now)
        return "closed"

    # --- refunds ------------------------------------------------------------------------------------

    async def refund(self, order_no: str, request: RefundRequest, now: datetime | None = None) -> tuple[dict, bool]:
        """The merchant's refund of a mini-program order, sent to WeChat Pay: (the refund, made now). A
        refused one is recorded and raised as CheckoutRefused; an unclear one stays under way and is asked
        about by the worker."""
        now = now or _now()
        if self.refunds is None:
            raise CheckoutRefused("wechat_pay_not_configured", "WeChat Pay is not configured here")
        order = await self.store.order(order_no)
        if order is None:
            raise OrderNotFound(f"no order {order_no}")
        if not order.get("checkout"):
            raise CheckoutRefused("not_a_checkout_order", "only orders paid in the mini-program are refunded through "
                                                          "WeChat Pay; report other refunds as a refunded event")
        out_refund_no = out_refund_no_of(order_no, request.idempotency_key)
        fingerprint = request_hash(request.wanted or [], request.items is None, request.reason)
        for _ in range(PLANNING_ATTEMPTS):
            existing = await self.refund_store.get(out_refund_no)
            if existing is not None:
                if existing["request_hash"] != fingerprint:
                    raise CheckoutConflict("this idempotency_key was used before for another refund",
                                           field="idempotency_key")
                return existing, False
            if not order["checkout"].get("transaction_id") or order["status"] not in (OrderStatus.PAID,
                                                                                      OrderStatus.CONFIRMED):
                raise CheckoutRefused("not_paid", f"the order is {order['status']}: only a paid order is refunded")
            reserved = order["checkout"]["refund_qty"]
            lines = plan_refund(order["items"], reserved, request.wanted)
            refund = self._new_refund(order, out_refund_no, fingerprint, lines, request.reason, now)
            after = list(reserved)
            for line in lines:
                after[line.item_index] += line.qty
            writes = WriteSet()
            writes.guard(ORDERS, {"_id": order_no, "checkout.refund_qty": reserved},
                         {"$set": {"checkout.refund_qty": after}})
            writes.insert(ORDER_REFUNDS, [refund])
            try:
                await commit(self.client, self.db, writes)
            except Conflict:  # another refund of the order, or this one, meanwhile: decide again
                order = await self.store.order(order_no)
                continue
            return await self._send_refund(refund, now), True
        raise CheckoutRefused("busy", "the order's refunds kept changing; try again")

    async def refunds_of(self, order_no: str) -> list[dict]:
        return await self.refund_store.of_order(order_no)

    @staticmethod
    def _new_refund(order: dict, out_refund_no: str, fingerprint: str, lines: tuple[RefundLine, ...], reason: str,
                    now: datetime) -> dict:
        return {"_id": out_refund_no, "order_no": order["_id"], "out_trade_no": order["checkout"]["out_trade_no"],
                "request_hash": fingerprint, "lines": [line.to_dict() for line in lines],
                "refund_fen": sum(line.refund_fen for line in lines), "total_fen": order["total_fen"],
                "reason": reason, "status": UNDER_WAY, "refund_id": None, "success_time": None, "error": None,
                "created_at": now, "updated_at": now, "check_at": now + REFUND_CHECK_AFTER}

    async def _send_refund(self, refund: dict, now: datetime) -> dict:
        try:
            answer = await self.refunds.create(refund["out_trade_no"], refund["_id"], refund["refund_fen"],
                                               refund["total_fen"], refund["reason"])
        except PayRefused as refused:
            await self._end_refund(refund, "REFUSED", now, {"error": f"{refused.code}: {refused.message}"})
            raise CheckoutRefused("refund_refused", f"WeChat Pay refused the refund: {refused.message}") from None
        except PayError as failure:  # unclear: asked about again by the worker, under the same number
            log.warning("refund %s: %s", refund["_id"], failure)
            await self.refund_store.move(refund["_id"], [UNDER_WAY], {"error": str(failure), "updated_at": now})
        else:
            await self.apply_refund(refund, answer, now)
        return await self.refund_store.get(refund["_id"])

    async def receive_refund_notice(self, headers: Mapping[str, str], body: bytes, now: datetime) -> str:
        """WeChat Pay's refund callback (success, closed, abnormal): verified, opened, applied once."""
        event_type, answer = await _opened(self.refunds, headers, body, REFUND_EVENTS, refund_of)
        if answer is None:
            return f"ignored {event_type}"
        refund = await self.refund_store.get(answer.out_refund_no)
        if refund is None:
            log.warning("a refund that is not ours: %s", answer.out_refund_no)
            return "not ours"
        return await self.apply_refund(refund, answer, now)

    async def _check_refund(self, refund: dict, now: datetime) -> str:
        try:
            answer = await self.refunds.query(refund["_id"])
            if answer is None:  # the create never reached WeChat Pay: send it again, under the same number
                await self.refund_store.move(refund["_id"], [UNDER_WAY], {"check_at": now + REFUND_CHECK_AFTER})
                return (await self._send_refund(refund, now))["status"]
        except PayError as failure:
            await self.refund_store.move(refund["_id"], [UNDER_WAY], {"check_at": now + REFUND_CHECK_AFTER,
                                                                       "error": str(failure)})
            return f"asked again later: {failure}"
        except CheckoutRefused as refused:
            return refused.message
        return await self.apply_refund(refund, answer, now)

    async def apply_refund(self, refund: dict, answer: Refund, now: datetime) -> str:
        """Bring the refund to what WeChat Pay says, once: success is the order's `refunded` event and the
        items back in stock; closed gives the units back to refund again; abnormal waits for the merchant."""
        if (answer.out_trade_no, answer.refund_fen) != (refund["out_trade_no"], refund["refund_fen"]):
            log.error("refund %s: WeChat Pay tells of another amount or order", refund["_id"])
            return "contradiction"
        fields = {"refund_id": answer.refund_id, "updated_at": now}
        if answer.status == UNDER_WAY:
            await self.refund_store.move(refund["_id"], [UNDER_WAY], {**fields, "check_at": now + REFUND_CHECK_AFTER})
            return "still processing"
        if answer.status == "SUCCESS":
            lines = [RefundLine(**line) for line in refund["lines"]]
            refunded = tuple(RefundedSku(sku=line.sku, refund_fen=line.refund_fen) for line in lines if line.refund_fen)
            if refunded:
                await self._event(refund["order_no"], NewEvent(
                    event_id=_event_id("refund", refund["_id"]), type=EventType.REFUNDED, at=answer.success_time,
                    items=refunded), now)
            await self.catalogue.restock(_event_id("refund", refund["_id"]), [(line.sku, line.qty) for line in lines])
            moved = await self.refund_store.move(refund["_id"], [UNDER_WAY, "ABNORMAL"], {
                **fields, "status": "SUCCESS", "success_time": answer.success_time, "check_at": None})
            return "refunded" if moved else "refunded before"
        if answer.status == "CLOSED":
            return await self._end_refund(refund, "CLOSED", now, fields)
        moved = await self.refund_store.move(refund["_id"], [UNDER_WAY], {**fields, "status": answer.status,
                                                                           "check_at": None})
        if moved:
            log.error("refund %s of order %s is %s: the merchant must see to it", refund["_id"], refund["order_no"],
                      answer.status)
        return answer.status.lower()

    async def _end_refund(self, refund: dict, status: str, now: datetime, fields: dict) -> str:
        """A refund that gives nothing back: its units may be refunded again."""
        writes = WriteSet()
        writes.guard(ORDER_REFUNDS, {"_id": refund["_id"], "status": {"$in": [UNDER_WAY, "ABNORMAL"]}},
                     {"$set": {**fields, "status": status, "check_at": None, "updated_at": now}})
        writes.update(ORDERS, UpdateOne({"_id": refund["order_no"]}, {"$inc": {
            f"checkout.refund_qty.{line['item_index']}": -line["qty"] for line in refund["lines"]}}))
        try:
            await commit(self.client, self.db, writes)
        except Conflict:
            return f"{status.lower()} before"
        return status.lower()

    # --- helpers -------------------------------------------------------------------------------------

    def _transactions(self) -> Transactions:
        if self.transactions is None:
            raise CheckoutRefused("wechat_pay_not_configured", "WeChat Pay is not configured here: nothing can be "
                                                               "paid in the mini-program")
        return self.transactions


def _now() -> datetime:
    return datetime.now(timezone.utc)


async def _opened(api: Transactions | Refunds | None, headers: Mapping[str, str], body: bytes,
                  event_types: Collection[str], read: Callable[[dict], T]) -> tuple[str | None, T | None]:
    """A WeChat Pay callback's event type and, when it is one of `event_types`, its resource as `read` reads it.
    CallbackRejected when WeChat Pay is not configured, or the callback is not WeChat Pay's, not fresh, or
    its resource not what the event says."""
    if api is None:
        raise CallbackRejected(401, "WeChat Pay is not configured")
    notice, resource = await api.client.open_callback(headers, body)
    event_type = notice.get("event_type")
    if event_type not in event_types:
        return event_type, None
    try:
        return event_type, read(resource)
    except PayUnclear as error:
        raise CallbackRejected(400, error.message) from None
