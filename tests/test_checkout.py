"""The mini-program's checkout end to end over real HTTP: the server places orders and asks the sandbox's WeChat
Pay for prepays, the sandbox's buyer pays and WeChat Pay calls back signed and encrypted; payments, closes,
confirmations and refunds all land in the orders pipeline, whose commissions, ledger and stock follow."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from distribution.checkout import CheckoutSettings, RefundRequest
from distribution.scene import product_scene
from sandbox import Fault
from sandbox.pay import CLOSE_TRANSACTION_ENDPOINT, CREATE_TRANSACTION_ENDPOINT
from tests.console_fixtures import staff_client
from tests.conftest import MERCHANT_TOKEN
from tests.order_fixtures import drain, put_rules
from tests.test_miniapp_session import auth, login

MERCHANT = {"Authorization": f"Bearer {MERCHANT_TOKEN}"}
ORDERS = "/api/v1/orders"
PAYMENT_NOTIFY = "/wechatpay/notify/payment"
TEA, CUP = "tea-250", "cup"
TEA_FEN, CUP_FEN = 9_900, 1_500


def now() -> datetime:
    return datetime.now(timezone.utc)


@pytest.fixture
async def shop(server, sandbox):
    """The server with WeChat Pay's callbacks delivered to it, two commission levels paid at payment, and a tea
    (10 in stock) and a cup (5) on sale."""
    sandbox.state.pay.deliver_to = server.base_url
    await put_rules(server.runtime, levels=2, level_rates_bp=(1000, 500), trigger="paid", freeze_days=7)
    product = await server.http.post("/api/merchant/v1/products", headers=MERCHANT, json={
        "title": "龙井茶礼盒", "category": "drinks", "skus": [
            {"sku": TEA, "title": "250g", "price_fen": TEA_FEN, "stock": 10},
            {"sku": CUP, "title": "茶杯", "price_fen": CUP_FEN, "stock": 5}]})
    assert product.status_code == 201, product.text
    server.product_id = product.json()["id"]
    return server


async def buyer(server, code: str, scene: str | None = None) -> tuple[dict, dict]:
    session = await login(server, code, **({"scene": scene} if scene else {}))
    return session, auth(session["token"])


async def checkout(server, headers, items: list[tuple[str, int]], key: str = "k-1", **extra):
    return await server.http.post(ORDERS, headers=headers, json={
        "items": [{"sku": sku, "qty": qty} for sku, qty in items], "idempotency_key": key, **extra})


async def placed(server, headers, items: list[tuple[str, int]], key: str = "k-1") -> dict:
    response = await checkout(server, headers, items, key)
    assert response.status_code == 201, response.text
    return response.json()


async def merchant_order(server, order_no: str) -> dict:
    response = await server.merchant_get(f"/api/merchant/v1/orders/{order_no}")
    assert response.status_code == 200, response.text
    return response.json()


async def out_trade_no(server, order_no: str) -> str:
    return (await merchant_order(server, order_no))["checkout"]["out_trade_no"]


async def stock(server, sku: str) -> int:
    return (await server.runtime.db.skus.find_one({"_id": sku}))["stock"]


async def balances(server, member_id: str) -> dict:
    return await server.runtime.ledger.balances(member_id)


async def paid_events(server, order_no: str) -> list[dict]:
    return await server.runtime.db.order_events.find({"order_no": order_no, "type": "paid"}).to_list()


async def clean(server) -> None:
    assert (await server.runtime.ledger.verify()).clean


async def test_the_whole_loop_from_a_shared_code_to_a_refunds_claw_back(shop, sandbox):
    runtime, pay = shop.runtime, sandbox.state.pay
    promoter = await login(shop, "wang", profile={"nickname": "小王"})
    promoter_id = promoter["member"]["id"]
    share = await shop.http.get(f"/api/v1/products/{shop.product_id}/share", headers=auth(promoter["token"]))
    assert share.status_code == 200 and share.headers["content-type"] == "image/png"  # its scene: product_scene
    session, headers = await buyer(shop, "li", product_scene(promoter_id, shop.product_id))
    assert session["member"]["upline"] == {"nickname": "小王"}

    answer = await placed(shop, headers, [(TEA, 2), (CUP, 1)])
    order = answer["order"]
    assert (order["status"], order["total_fen"]) == ("created", 2 * TEA_FEN + CUP_FEN)
    assert [(item["sku"], item["qty"], item["paid_fen"]) for item in order["items"]] == [
        (TEA, 2, 2 * TEA_FEN), (CUP, 1, CUP_FEN)]
    parameters = answer["request_payment"]
    assert parameters["signType"] == "RSA" and parameters["package"].startswith("prepay_id=")
    assert pay.verify_request_payment(parameters) is None  # paySign verifies with the merchant's key, same app
    assert (await stock(shop, TEA), await stock(shop, CUP)) == (8, 4)
    stored = await merchant_order(shop, order["order_no"])
    assert stored["upline_chain"] == [promoter_id]  # the buyer's chain, snapshotted as for any order
    trade_no = stored["checkout"]["out_trade_no"]
    assert trade_no != order["order_no"] and pay.transactions[trade_no].total == order["total_fen"]

    paid = await shop.http.post(f"{sandbox.base_url}/_sandbox/pay/{trade_no}/pay")
    assert paid.json()["notices_sent"] == [200]
    await drain(runtime)
    assert (await merchant_order(shop, order["order_no"]))["status"] == "paid"
    assert await balances(shop, promoter_id) == {"frozen_fen": 2_130, "available_fen": 0, "locked_fen": 0}

    confirmed = await shop.http.post(f"{ORDERS}/{order['order_no']}/confirm", headers=headers)
    assert confirmed.status_code == 202, confirmed.text
    await drain(runtime)
    assert (await merchant_order(shop, order["order_no"]))["status"] == "confirmed"
    assert (await runtime.commissions.settle_due(now() + timedelta(days=8))).settled == 2
    assert await balances(shop, promoter_id) == {"frozen_fen": 0, "available_fen": 2_130, "locked_fen": 0}

    refund = await shop.http.post(f"/api/merchant/v1/orders/{order['order_no']}/refunds", headers=MERCHANT,
                                  json={"items": [{"sku": CUP, "qty": 1}], "reason": "破损", "idempotency_key": "r-1"})
    assert refund.status_code == 201, refund.text
    assert (refund.json()["status"], refund.json()["refund_fen"]) == ("PROCESSING", CUP_FEN)
    ended = await shop.http.post(f"{sandbox.base_url}/_sandbox/refunds/{refund.json()['id']}/succeed")
    assert ended.json()["notices_sent"] == [200]
    await drain(runtime)
    after = await merchant_order(shop, order["order_no"])
    assert (after["refunded_fen"], after["status"]) == (CUP_FEN, "confirmed")
    assert await balances(shop, promoter_id) == {"frozen_fen": 0, "available_fen": 2_130 - 150, "locked_fen": 0}
    assert await stock(shop, CUP) == 5  # the returned cup is back
    refunds = (await shop.merchant_get(f"/api/merchant/v1/orders/{order['order_no']}/refunds")).json()["items"]
    assert [(each["status"], each["lines"][0]["sku"]) for each in refunds] == [("SUCCESS", CUP)]
    assert await pay.notify_refund(refund.json()["id"], times=2) == [200, 200]  # told again: nothing more
    await drain(runtime)
    assert await balances(shop, promoter_id) == {"frozen_fen": 0, "available_fen": 1_980, "locked_fen": 0}
    assert await stock(shop, CUP) == 5

    mine = (await shop.http.get(ORDERS, headers=headers)).json()
    assert [each["order_no"] for each in mine["items"]] == [order["order_no"]]
    await clean(shop)


async def test_a_payment_told_three_times_is_applied_once(shop, sandbox):
    _, headers = await buyer(shop, "thrice")
    order_no = (await placed(shop, headers, [(TEA, 1)]))["order"]["order_no"]
    trade_no = await out_trade_no(shop, order_no)
    await sandbox.state.pay.pay(trade_no, times=3)
    assert sandbox.state.pay.transactions[trade_no].notices_sent == [200, 200, 200]
    await drain(shop.runtime)
    events = await paid_events(shop, order_no)
    assert len(events) == 1 and events[0]["event_id"].startswith("pay:")
    assert (await merchant_order(shop, order_no))["status"] == "paid"
    await clean(shop)


async def test_forged_stale_tampered_or_replayed_payment_callbacks_change_nothing(shop, sandbox):
    pay = sandbox.state.pay
    _, headers = await buyer(shop, "forged")
    order_no = (await placed(shop, headers, [(TEA, 1)]))["order"]["order_no"]
    trade_no = await out_trade_no(shop, order_no)
    await pay.pay(trade_no, deliver=False)
    assert await pay.notify_payment(trade_no, forge="signature") == [401]
    assert await pay.notify_payment(trade_no, forge="timestamp") == [401]
    assert await pay.notify_payment(trade_no, forge="tampered") == [401]
    assert await pay.notify_payment(trade_no, forge="apiv3_key") == [400]
    unsigned = await shop.http.post(PAYMENT_NOTIFY, content=pay.payment_notice(pay.transactions[trade_no]).body)
    assert unsigned.status_code == 401 and unsigned.json()["code"] == "FAIL"
    await drain(shop.runtime)
    assert await paid_events(shop, order_no) == []
    assert (await merchant_order(shop, order_no))["status"] == "created"

    assert await pay.notify_payment(trade_no) == [200]
    assert await pay.send(pay.last_delivery) == 400  # the very same callback again: its nonce was seen
    await drain(shop.runtime)
    assert (await merchant_order(shop, order_no))["status"] == "paid"


async def test_a_payment_of_another_amount_is_flagged_for_the_merchant_not_paid(shop, sandbox):
    _, headers = await buyer(shop, "short")
    order_no = (await placed(shop, headers, [(TEA, 1)]))["order"]["order_no"]
    trade_no = await out_trade_no(shop, order_no)
    await sandbox.state.pay.pay(trade_no, deliver=False)
    assert await sandbox.state.pay.notify_payment(trade_no, total_fen=1) == [200]
    await drain(shop.runtime)
    order = await merchant_order(shop, order_no)
    assert order["status"] == "created" and await paid_events(shop, order_no) == []
    assert order["checkout"]["payment_problem"] == f"paid 1 fen for an order of {TEA_FEN} fen"
    console = await shop.runtime.checkout.advance(now() + timedelta(hours=1))
    assert console["closed"] == 0  # flagged: the merchant settles it, the worker does not close it


async def test_a_lost_payment_callback_is_found_by_the_periodic_query(shop, sandbox):
    _, headers = await buyer(shop, "lost")
    order_no = (await placed(shop, headers, [(TEA, 1)]))["order"]["order_no"]
    trade_no = await out_trade_no(shop, order_no)
    await sandbox.state.pay.pay(trade_no, deliver=False)
    assert (await shop.runtime.checkout.advance(now()))["closed"] == 0  # not due yet
    await shop.runtime.checkout.advance(now() + timedelta(minutes=31))
    await drain(shop.runtime)
    assert (await merchant_order(shop, order_no))["status"] == "paid"
    assert sandbox.state.pay.transactions[trade_no].trade_state == "SUCCESS"  # never closed
    assert await stock(shop, TEA) == 9


async def test_an_unpaid_order_is_closed_at_wechat_pay_and_its_stock_released_once(shop, sandbox):
    _, headers = await buyer(shop, "unpaid")
    order_no = (await placed(shop, headers, [(TEA, 3)]))["order"]["order_no"]
    trade_no = await out_trade_no(shop, order_no)
    assert await stock(shop, TEA) == 7
    later = now() + timedelta(minutes=31)
    assert (await shop.runtime.checkout.advance(later))["closed"] == 1
    await shop.runtime.checkout.advance(later)  # before the worker applied the close: the same, once
    await drain(shop.runtime)
    assert sandbox.state.pay.transactions[trade_no].trade_state == "CLOSED"
    assert (await merchant_order(shop, order_no))["status"] == "closed"
    assert await stock(shop, TEA) == 10
    assert (await shop.runtime.checkout.advance(later))["closed"] == 0
    refused = await shop.http.post(f"{ORDERS}/{order_no}/pay", headers=headers)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "not_payable"


async def test_an_order_paid_just_before_its_close_is_paid_not_closed(shop, sandbox):
    _, headers = await buyer(shop, "late")
    order_no = (await placed(shop, headers, [(TEA, 1)]))["order"]["order_no"]
    trade_no = await out_trade_no(shop, order_no)
    sandbox.state.faults.add(Fault("v3/pay/transactions/out-trade-no", errcode=500))  # the query fails once
    await shop.runtime.checkout.advance(now() + timedelta(minutes=31))
    assert sandbox.state.calls.received(CLOSE_TRANSACTION_ENDPOINT) == []  # no close without asking first
    await sandbox.state.pay.pay(trade_no, deliver=False)
    await shop.runtime.checkout.advance(now() + timedelta(minutes=31))
    await drain(shop.runtime)
    assert (await merchant_order(shop, order_no))["status"] == "paid" and await stock(shop, TEA) == 9


async def test_a_close_refused_as_paid_finds_the_payment(shop, sandbox, monkeypatch):
    _, headers = await buyer(shop, "just-in-time")
    order_no = (await placed(shop, headers, [(TEA, 1)]))["order"]["order_no"]
    trade_no = await out_trade_no(shop, order_no)
    transactions = shop.runtime.checkout.transactions
    asked = transactions.query

    async def paid_right_after_the_query(number: str):
        answer = await asked(number)
        if sandbox.state.pay.transactions[number].trade_state == "NOTPAY":
            await sandbox.state.pay.pay(number, deliver=False)  # the buyer pays between the query and the close
        return answer

    monkeypatch.setattr(transactions, "query", paid_right_after_the_query)
    await shop.runtime.checkout.advance(now() + timedelta(minutes=31))
    assert len(sandbox.state.calls.received(CLOSE_TRANSACTION_ENDPOINT)) == 1  # refused: ORDERPAID
    await drain(shop.runtime)
    assert (await merchant_order(shop, order_no))["status"] == "paid" and await stock(shop, TEA) == 9
    assert sandbox.state.pay.transactions[trade_no].trade_state == "SUCCESS"


async def test_a_hundred_buyers_of_the_last_ten_units_make_exactly_ten_orders(shop):
    headers = [(await buyer(shop, f"rush-{index}"))[1] for index in range(100)]
    answers = await asyncio.gather(*(checkout(shop, each, [(TEA, 1)]) for each in headers))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201] * 10 + [409] * 90
    assert {answer.json()["error"]["code"] for answer in answers if answer.status_code == 409} == {"out_of_stock"}
    assert await stock(shop, TEA) == 0
    assert await shop.runtime.db.orders.count_documents({"checkout.source": "miniapp"}) == 10


async def test_the_price_comes_from_the_catalogue_and_a_sent_price_is_refused(shop):
    _, headers = await buyer(shop, "cheap")
    cheap = await shop.http.post(ORDERS, headers=headers, json={
        "items": [{"sku": TEA, "qty": 1, "price_fen": 1}], "idempotency_key": "k-1"})
    assert cheap.status_code == 400 and cheap.json()["error"]["field"] == "items[0].price_fen"
    total = await checkout(shop, headers, [(TEA, 1)], total_fen=1)
    assert total.status_code == 400 and total.json()["error"]["field"] == "total_fen"
    unknown = await checkout(shop, headers, [("nothing", 1)])
    assert unknown.status_code == 400 and unknown.json()["error"]["field"] == "items[0].sku"
    assert (await placed(shop, headers, [(TEA, 1)]))["order"]["total_fen"] == TEA_FEN
    assert await stock(shop, TEA) == 9


async def test_a_retried_checkout_is_the_same_order_and_another_body_under_its_key_is_refused(shop, sandbox):
    _, headers = await buyer(shop, "retry")
    address = {"name": "李雷", "phone": "13812345678", "region": "浙江省杭州市西湖区", "detail": "文三路 1 号"}
    first = await checkout(shop, headers, [(TEA, 2)], address=address)
    again = await checkout(shop, headers, [(TEA, 2)], address=address)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["order"]["order_no"] == first.json()["order"]["order_no"]
    assert again.json()["request_payment"]["package"] == first.json()["request_payment"]["package"]
    assert again.json()["order"]["address"] == address
    assert await stock(shop, TEA) == 8 and len(sandbox.state.pay.transactions) == 1
    other = await checkout(shop, headers, [(TEA, 1)], address=address)
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_conflict"
    assert await shop.runtime.db.orders.count_documents({}) == 1
    assert "13812345678" not in str(await shop.runtime.db.orders.find_one({}))  # the address is sealed at rest


async def test_a_failed_prepay_leaves_an_unpaid_order_that_pays_later(shop, sandbox):
    _, headers = await buyer(shop, "flaky")
    sandbox.state.faults.add(Fault(CREATE_TRANSACTION_ENDPOINT, errcode=500))
    answer = await placed(shop, headers, [(TEA, 1)])
    assert answer["request_payment"] is None and answer["payment_error"]
    order_no = answer["order"]["order_no"]
    paying = await shop.http.post(f"{ORDERS}/{order_no}/pay", headers=headers)
    assert paying.status_code == 200, paying.text
    assert sandbox.state.pay.verify_request_payment(paying.json()["request_payment"]) is None
    await sandbox.state.pay.pay(await out_trade_no(shop, order_no))
    await drain(shop.runtime)
    assert (await shop.http.get(f"{ORDERS}/{order_no}", headers=headers)).json()["status"] == "paid"
    assert (await shop.http.post(f"{ORDERS}/{order_no}/pay", headers=headers)).status_code == 409


async def test_a_buyer_sees_and_confirms_only_their_own_orders(shop):
    _, mine = await buyer(shop, "owner")
    _, theirs = await buyer(shop, "stranger")
    order_no = (await placed(shop, mine, [(TEA, 1)]))["order"]["order_no"]
    assert (await shop.http.get(f"{ORDERS}/{order_no}", headers=theirs)).status_code == 404
    assert (await shop.http.post(f"{ORDERS}/{order_no}/confirm", headers=theirs)).status_code == 404
    unpaid = await shop.http.post(f"{ORDERS}/{order_no}/confirm", headers=mine)
    assert unpaid.status_code == 409 and unpaid.json()["error"]["code"] == "not_paid"
    assert (await shop.http.get(ORDERS, headers=theirs)).json()["items"] == []
    assert (await shop.http.get(ORDERS)).status_code == 401


async def test_a_paid_order_left_unconfirmed_is_confirmed_after_the_shops_days(shop, sandbox):
    await shop.runtime.merchant_settings.put(CheckoutSettings(auto_confirm_days=3))
    _, headers = await buyer(shop, "quiet")
    order_no = (await placed(shop, headers, [(TEA, 1)]))["order"]["order_no"]
    await sandbox.state.pay.pay(await out_trade_no(shop, order_no))
    await drain(shop.runtime)
    assert (await shop.runtime.checkout.advance(now() + timedelta(days=2)))["confirmed"] == 0
    assert (await shop.runtime.checkout.advance(now() + timedelta(days=3, minutes=1)))["confirmed"] == 1
    await drain(shop.runtime)
    assert (await merchant_order(shop, order_no))["status"] == "confirmed"


async def test_refunds_never_give_back_more_than_was_paid_and_a_closed_one_gives_its_units_back(shop, sandbox):
    pay = sandbox.state.pay
    _, headers = await buyer(shop, "refunds")
    order_no = (await placed(shop, headers, [(TEA, 3)]))["order"]["order_no"]
    await pay.pay(await out_trade_no(shop, order_no))
    await drain(shop.runtime)
    url = f"/api/merchant/v1/orders/{order_no}/refunds"

    async def refund(key: str, **body):
        return await shop.http.post(url, headers=MERCHANT, json={"reason": "退货", "idempotency_key": key, **body})

    first = await refund("a", items=[{"sku": TEA, "qty": 2}])
    assert first.json()["refund_fen"] == 2 * TEA_FEN
    replay = await refund("a", items=[{"sku": TEA, "qty": 2}])
    assert replay.status_code == 200 and replay.json()["id"] == first.json()["id"]
    conflict = await refund("a", items=[{"sku": TEA, "qty": 1}])
    assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "idempotency_conflict"
    too_many = await refund("b", items=[{"sku": TEA, "qty": 2}])
    assert too_many.status_code == 400 and too_many.json()["error"]["field"] == "items[0].qty"
    await pay.finish_refund(first.json()["id"], "CLOSED")
    whole = await refund("c")  # the closed one's units are refundable again: all three
    assert whole.json()["refund_fen"] == 3 * TEA_FEN
    await pay.finish_refund(whole.json()["id"], "ABNORMAL")
    listed = (await shop.merchant_get(url)).json()["items"]
    assert [each["status"] for each in listed] == ["CLOSED", "ABNORMAL"]
    assert (await refund("d")).json()["error"]["field"] == "items"  # nothing left while the abnormal one waits
    await drain(shop.runtime)
    assert (await merchant_order(shop, order_no))["refunded_fen"] == 0 and await stock(shop, TEA) == 7

    await pay.finish_refund(whole.json()["id"], "SUCCESS")  # the merchant got WeChat Pay to pay it after all
    await drain(shop.runtime)
    order = await merchant_order(shop, order_no)
    assert (order["status"], order["refunded_fen"]) == ("refunded", 3 * TEA_FEN) and await stock(shop, TEA) == 10
    await clean(shop)


async def test_a_lost_refund_callback_is_found_by_the_periodic_query(shop, sandbox):
    _, headers = await buyer(shop, "quiet-refund")
    order_no = (await placed(shop, headers, [(CUP, 2)]))["order"]["order_no"]
    await sandbox.state.pay.pay(await out_trade_no(shop, order_no))
    await drain(shop.runtime)
    refund, _ = await shop.runtime.checkout.refund(order_no, RefundRequest.from_dict({
        "items": [{"sku": CUP, "qty": 1}], "reason": "退货", "idempotency_key": "lost"}))
    await sandbox.state.pay.finish_refund(refund["_id"], deliver=False)
    assert (await shop.runtime.checkout.advance(now() + timedelta(minutes=6)))["refunds_checked"] == 1
    await drain(shop.runtime)
    assert (await merchant_order(shop, order_no))["refunded_fen"] == CUP_FEN and await stock(shop, CUP) == 4


async def test_a_merchant_api_order_is_not_refunded_through_wechat_pay(shop):
    created = await shop.http.post("/api/merchant/v1/orders", headers=MERCHANT, json={
        "order_no": "SO-1", "buyer": {"member_id": "nobody"},
        "items": [{"sku": TEA, "title": "茶", "qty": 1, "paid_fen": 100}], "paid_at": now().isoformat()})
    assert created.status_code == 201
    refused = await shop.http.post("/api/merchant/v1/orders/SO-1/refunds", headers=MERCHANT,
                                   json={"reason": "x", "idempotency_key": "r"})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "not_a_checkout_order"
    assert (await shop.http.post("/api/merchant/v1/orders/none/refunds", headers=MERCHANT,
                                 json={"reason": "x", "idempotency_key": "r"})).status_code == 404


async def test_the_console_shows_the_payment_and_refunds_by_form_once_and_audited(shop, sandbox):
    _, headers = await buyer(shop, "console")
    order_no = (await placed(shop, headers, [(TEA, 2), (CUP, 1)]))["order"]["order_no"]
    await sandbox.state.pay.pay(await out_trade_no(shop, order_no))
    await drain(shop.runtime)
    operator, finance = await staff_client(shop, "operator"), await staff_client(shop, "finance")
    try:
        page = await operator.get(f"/admin/orders/{order_no}")
        assert page.status_code == 200 and 'id="order-payment"' in page.text and 'id="refund-form"' not in page.text
        form = {"qty:tea-250": "1", "qty:cup": "0", "reason": "破损", "idempotency_key": "console-1"}
        assert (await operator.post(f"/admin/orders/{order_no}/refunds", form)).status_code == 403
        assert (await finance.post(f"/admin/orders/{order_no}/refunds", form, csrf=False)).status_code == 403
        shown = await finance.get(f"/admin/orders/{order_no}")
        assert 'id="refund-form"' in shown.text
        for _ in range(2):  # submitted twice: one refund
            sent = await finance.post(f"/admin/orders/{order_no}/refunds", form)
            assert sent.status_code == 303 and sent.headers["location"].endswith("?refund=sent")
        refunds = await shop.runtime.checkout.refunds_of(order_no)
        assert [(each["refund_fen"], each["status"]) for each in refunds] == [(TEA_FEN, "PROCESSING")]
        assert f'data-refund-id="{refunds[0]["_id"]}"' in (await finance.get(f"/admin/orders/{order_no}")).text
        nothing = await finance.post(f"/admin/orders/{order_no}/refunds", {"reason": "x", "idempotency_key": "c-2"})
        assert nothing.status_code == 400 and 'role="alert"' in nothing.text
        audited = await shop.runtime.db.audit_log.find({"action": "order.refund"}).to_list()
        assert [(each["actor"]["name"], each["target"]["id"]) for each in audited] == [("finance1", order_no)]
    finally:
        await operator.aclose()
        await finance.aclose()
