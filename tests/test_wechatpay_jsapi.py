"""WeChat Pay v3 JSAPI payments and refunds: the client against the sandbox over real HTTP (which verifies what
we sign and signs what it answers), `wx.requestPayment`'s signature against an independent implementation,
the callbacks as WeChat Pay delivers them, and every refusal and injected error sorted as for transfer bills."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest
import pytest_asyncio
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler
from wechatpayv3 import utils as independent

from sandbox import Fault
from sandbox.pay import (
    CLOSE_TRANSACTION_ENDPOINT,
    CREATE_REFUND_ENDPOINT,
    CREATE_TRANSACTION_ENDPOINT,
    FORGED_ANSWER,
    QUERY_REFUND_ENDPOINT,
    QUERY_TRANSACTION_ENDPOINT,
)
from sandbox.wechat_pay import sandbox_key
from settings import SANDBOX_MINIAPP_APP_ID, SANDBOX_OA_APP_ID
from wechatpay import (
    PAYMENT_NOTIFY_PATH,
    REFUND_EVENTS,
    REFUND_NOTIFY_PATH,
    TRANSACTION_SUCCESS,
    CallbackRejected,
    PayRefused,
    PayUnclear,
    Refunds,
    ReplayGuard,
    Transactions,
    WeChatPayClient,
    crypto,
    merchant_keys,
    refund_of,
    transaction_of,
)

SHOP = "https://shop.example.test"
BUYER = "o-buyer-openid"
TRADE = "ORD20261206abc-1"


@pytest_asyncio.fixture
async def client(sandbox, wechat_redis, redis_prefix):
    made = WeChatPayClient(sandbox.base_url, merchant_keys(sandbox.state.pay.demo_settings()),
                           ReplayGuard(wechat_redis, redis_prefix), 2.0)
    yield made
    await made.aclose()


@pytest.fixture
def transactions(client) -> Transactions:
    return Transactions(client, SANDBOX_MINIAPP_APP_ID, SHOP + PAYMENT_NOTIFY_PATH)


@pytest.fixture
def refunds(client) -> Refunds:
    return Refunds(client, SHOP + REFUND_NOTIFY_PATH)


class _Notified(RequestHandler):
    """Our notify URLs as a test server: opens each callback with the client, answers what the handler would."""

    def initialize(self, client: WeChatPayClient, opened: list) -> None:
        self._client, self._opened = client, opened

    async def post(self) -> None:
        try:
            self._opened.append(await self._client.open_callback(self.request.headers, self.request.body))
        except CallbackRejected as rejected:
            self.set_status(rejected.status)


@pytest_asyncio.fixture
async def notified(sandbox, client):
    """The callbacks opened at our notify URLs, where the sandbox delivers them."""
    opened: list = []
    arguments = {"client": client, "opened": opened}
    sockets = bind_sockets(0, "127.0.0.1")
    server = HTTPServer(Application([(PAYMENT_NOTIFY_PATH, _Notified, arguments),
                                     (REFUND_NOTIFY_PATH, _Notified, arguments)]))
    server.add_sockets(sockets)
    sandbox.state.pay.deliver_to = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
    yield opened
    server.stop()
    await server.close_all_connections()


async def paid(sandbox, transactions, out_trade_no: str = TRADE, total: int = 10_000) -> None:
    await transactions.create_jsapi(out_trade_no, "两件商品", total, BUYER)
    await sandbox.state.pay.pay(out_trade_no, deliver=False)


async def test_a_prepay_is_made_once_for_the_mini_program_and_told_as_wechat_pay_tells_it(sandbox, transactions):
    expires = datetime(2026, 12, 6, 4, 0, tzinfo=timezone.utc)
    prepay_id = await transactions.create_jsapi(TRADE, "商" * 130, 2_990, BUYER, time_expire=expires)
    (call,) = sandbox.state.calls.received(CREATE_TRANSACTION_ENDPOINT)
    assert call.body == {"appid": SANDBOX_MINIAPP_APP_ID, "mchid": "1900000109", "description": "商" * 127,
                         "out_trade_no": TRADE, "notify_url": SHOP + PAYMENT_NOTIFY_PATH,
                         "amount": {"total": 2_990, "currency": "CNY"}, "payer": {"openid": BUYER},
                         "time_expire": "2026-12-06T12:00:00+08:00"}
    assert await transactions.create_jsapi(TRADE, "商" * 130, 2_990, BUYER, time_expire=expires) == prepay_id
    assert len(sandbox.state.pay.transactions) == 1
    transaction = await transactions.query(TRADE)
    assert (transaction.trade_state, transaction.total_fen, transaction.payer_openid, transaction.transaction_id,
            transaction.success_time, transaction.mch_id, transaction.appid) == (
        "NOTPAY", 2_990, BUYER, None, None, "1900000109", SANDBOX_MINIAPP_APP_ID)
    (query,) = sandbox.state.calls.received(QUERY_TRANSACTION_ENDPOINT)
    assert query.method == "GET"
    assert await transactions.query("ORD-never-made") is None
    with pytest.raises(PayRefused) as other_amount:
        await transactions.create_jsapi(TRADE, "商" * 130, 3_000, BUYER)
    assert other_amount.value.code == "INVALID_REQUEST"
    for number in ("short", "a.dot.is.not.allowed", "x" * 33):
        with pytest.raises(PayRefused) as bad_number:
            await transactions.create_jsapi(number, "商品", 100, BUYER)
        assert bad_number.value.code == "PARAM_ERROR"
    with pytest.raises(PayRefused) as not_bound:
        await Transactions(transactions.client, "wx-not-the-merchants", SHOP).create_jsapi("ORD000002", "x", 1, BUYER)
    assert not_bound.value.code == "PARAM_ERROR"


async def test_request_payment_is_signed_for_the_orders_app_with_the_merchant_key(sandbox, transactions):
    prepay_id = await transactions.create_jsapi(TRADE, "商品", 100, BUYER)
    parameters = transactions.request_payment(prepay_id)
    assert parameters["appId"] == SANDBOX_MINIAPP_APP_ID and parameters["signType"] == "RSA"
    assert parameters["package"] == f"prepay_id={prepay_id}"
    assert abs(int(parameters["timeStamp"]) - time.time()) < 60 and len(parameters["nonceStr"]) == 32
    signed = "\n".join(parameters[name] for name in ("appId", "timeStamp", "nonceStr", "package")) + "\n"
    assert parameters["paySign"] == independent.rsa_sign(sandbox_key("merchant"), signed)
    assert crypto.verify(sandbox_key("merchant").public_key(), signed, parameters["paySign"])
    pay = sandbox.state.pay
    assert pay.verify_request_payment(parameters) is None
    assert "appId" in pay.verify_request_payment({**parameters, "appId": SANDBOX_OA_APP_ID})
    assert "paySign" in pay.verify_request_payment({**parameters, "nonceStr": "0" * 32})
    assert "prepay" in pay.verify_request_payment({**parameters, "package": "prepay_id=wx-unknown"})
    other = Transactions(transactions.client, SANDBOX_OA_APP_ID, SHOP).request_payment(prepay_id)
    assert "appId" in pay.verify_request_payment(other)


async def test_an_unpaid_order_closes_and_a_paid_one_answers_orderpaid(sandbox, transactions):
    await transactions.create_jsapi("ORD000001", "商品", 100, BUYER)
    await transactions.close("ORD000001")
    await transactions.close("ORD000001")  # closing it again changes nothing
    await transactions.close("ORD-never-made")  # nothing there either can ever be paid
    assert (await transactions.query("ORD000001")).trade_state == "CLOSED"
    assert len(sandbox.state.calls.received(CLOSE_TRANSACTION_ENDPOINT)) == 3
    with pytest.raises(PayRefused) as closed:
        await transactions.create_jsapi("ORD000001", "商品", 100, BUYER)
    assert closed.value.code == "ORDER_CLOSED"
    async with httpx.AsyncClient(base_url=sandbox.base_url) as http:
        refused = await http.post("/_sandbox/pay/ORD000001/pay")
        assert refused.status_code == 409 and "ORDER_CLOSED" in refused.json()["error"]
        await transactions.create_jsapi(TRADE, "商品", 2_500, BUYER)
        paying = await http.post(f"/_sandbox/pay/{TRADE}/pay", params={"deliver": "0"})
    assert paying.json()["trade_state"] == "SUCCESS" and paying.json()["notices_sent"] == []
    with pytest.raises(PayRefused) as orderpaid:
        await transactions.close(TRADE)
    assert orderpaid.value.code == "ORDERPAID"
    with pytest.raises(PayRefused) as paid_already:
        await transactions.create_jsapi(TRADE, "商品", 2_500, BUYER)
    assert paid_already.value.code == "ORDERPAID"
    transaction = await transactions.query(TRADE)
    assert transaction.trade_state == "SUCCESS" and transaction.total_fen == 2_500
    assert transaction.transaction_id == paying.json()["transaction_id"]
    assert abs(transaction.success_time - datetime.now(timezone.utc)) < timedelta(minutes=1)


async def test_a_prepay_past_its_time_expire_cannot_be_paid(sandbox, transactions):
    await transactions.create_jsapi(TRADE, "商品", 100, BUYER,
                                    time_expire=datetime.now(timezone.utc) - timedelta(minutes=1))
    async with httpx.AsyncClient(base_url=sandbox.base_url) as http:
        refused = await http.post(f"/_sandbox/pay/{TRADE}/pay")
    assert refused.status_code == 409 and "ORDER_CLOSED" in refused.json()["error"]
    assert (await transactions.query(TRADE)).trade_state == "NOTPAY"


async def test_refunds_are_made_once_per_number_and_never_beyond_what_is_left(sandbox, transactions, refunds):
    await transactions.create_jsapi("ORD000009", "商品", 500, BUYER)
    with pytest.raises(PayRefused) as unpaid:
        await refunds.create("ORD000009", "RF-unpaid", 100, 500)
    assert unpaid.value.code == "INVALID_REQUEST"
    await paid(sandbox, transactions)
    first = await refunds.create(TRADE, "RF-1", 3_000, 10_000, reason="退一件" * 30)
    assert (first.status, first.refund_fen, first.total_fen, first.out_trade_no) == ("PROCESSING", 3_000, 10_000, TRADE)
    assert sandbox.state.calls.received(CREATE_REFUND_ENDPOINT)[-1].body == {
        "out_trade_no": TRADE, "out_refund_no": "RF-1", "notify_url": SHOP + REFUND_NOTIFY_PATH,
        "amount": {"refund": 3_000, "total": 10_000, "currency": "CNY"}, "reason": ("退一件" * 30)[:80]}
    again = await refunds.create(TRADE, "RF-1", 3_000, 10_000)
    assert again.refund_id == first.refund_id and len(sandbox.state.pay.refunds) == 1
    for number, refund, total, code in (("RF-1", 2_000, 10_000, "INVALID_REQUEST"),  # same number, other amount
                                        ("RF-2", 7_001, 10_000, "INVALID_REQUEST"),  # more than is left
                                        ("RF-2", 1_000, 9_000, "PARAM_ERROR")):  # not the order's total
        with pytest.raises(PayRefused) as refused:
            await refunds.create(TRADE, number, refund, total)
        assert refused.value.code == code and not refused.value.retryable
    with pytest.raises(PayRefused) as unknown:
        await refunds.create("ORD-never-made", "RF-3", 1, 1)
    assert unknown.value.code == "RESOURCE_NOT_EXISTS"
    assert sandbox.state.pay.refundable(TRADE) == 7_000

    assert (await refunds.query("RF-1")).status == "PROCESSING"
    assert len(sandbox.state.calls.received(QUERY_REFUND_ENDPOINT)) == 1
    await sandbox.state.pay.finish_refund("RF-1", deliver=False)
    done = await refunds.query("RF-1")
    assert done.status == "SUCCESS" and abs(done.success_time - datetime.now(timezone.utc)) < timedelta(minutes=1)
    assert (await transactions.query(TRADE)).trade_state == "REFUND"
    assert await refunds.query("RF-never-made") is None

    rest = await refunds.create(TRADE, "RF-2", 7_000, 10_000)
    await sandbox.state.pay.finish_refund("RF-2", "CLOSED", deliver=False)
    assert (await refunds.query(rest.out_refund_no)).status == "CLOSED"
    assert sandbox.state.pay.refundable(TRADE) == 7_000  # a closed refund gave nothing back: it can be asked again


async def test_payments_and_refunds_are_told_to_the_notify_urls(sandbox, transactions, refunds, notified):
    await transactions.create_jsapi(TRADE, "商品", 10_000, BUYER)
    async with httpx.AsyncClient(base_url=sandbox.base_url) as http:
        paying = await http.post(f"/_sandbox/pay/{TRADE}/pay", params={"times": "2"})
        assert paying.json()["notices_sent"] == [200, 200]
        assert (await http.post(f"/_sandbox/pay/{TRADE}/pay")).status_code == 409  # paid already
        assert (await http.post(f"/_sandbox/pay/{TRADE}/pay?times=11")).status_code == 400
        await refunds.create(TRADE, "RF-1", 2_500, 10_000)
        ending = await http.post("/_sandbox/refunds/RF-1/succeed")
        assert ending.json() == {"out_refund_no": "RF-1", "status": "SUCCESS", "notices_sent": [200]}
        assert (await http.post("/_sandbox/refunds/RF-1/close")).status_code == 409  # it ended already
        assert (await http.post("/_sandbox/refunds/RF-nope/close")).status_code == 404
    (first, _), (second, resource), (refund_notice, refund_resource) = notified
    assert first["event_type"] == second["event_type"] == TRANSACTION_SUCCESS and first["id"] != second["id"]
    transaction = transaction_of(resource)
    assert (transaction.out_trade_no, transaction.trade_state, transaction.total_fen, transaction.payer_openid,
            transaction.mch_id, transaction.appid) == (TRADE, "SUCCESS", 10_000, BUYER, "1900000109",
                                                       SANDBOX_MINIAPP_APP_ID)
    assert resource["amount"] == {"total": 10_000, "payer_total": 10_000, "currency": "CNY", "payer_currency": "CNY"}
    assert transaction.transaction_id == paying.json()["transaction_id"] and transaction.success_time is not None
    assert REFUND_EVENTS[refund_notice["event_type"]] == "SUCCESS"
    refund = refund_of(refund_resource)
    assert (refund.out_refund_no, refund.out_trade_no, refund.status, refund.refund_fen, refund.total_fen) == (
        "RF-1", TRADE, "SUCCESS", 2_500, 10_000)
    assert refund_resource["amount"] == {"total": 10_000, "refund": 2_500, "payer_total": 10_000,
                                         "payer_refund": 2_500}

    await sandbox.state.pay.notify_payment(TRADE, total_fen=1)  # signed, and telling another amount
    assert transaction_of(notified[-1][1]).total_fen == 1
    sandbox.state.pay.refunds_succeed_after = 0.0  # refunds end by themselves, as in the demo
    await refunds.create(TRADE, "RF-2", 1_000, 10_000)
    await sandbox.state.pay.settle()
    assert notified[-1][0]["event_type"] == "REFUND.SUCCESS" and notified[-1][1]["out_refund_no"] == "RF-2"
    sandbox.state.pay.refunds_succeed_after = None
    await refunds.create(TRADE, "RF-3", 1_000, 10_000)
    await sandbox.state.pay.finish_refund("RF-3", "ABNORMAL")
    assert REFUND_EVENTS[notified[-1][0]["event_type"]] == refund_of(notified[-1][1]).status == "ABNORMAL"


@pytest.mark.parametrize("forge, status", [("signature", 401), ("timestamp", 401), ("tampered", 401),
                                           ("apiv3_key", 400)])
async def test_a_forged_stale_tampered_or_undecryptable_notify_is_rejected(sandbox, transactions, refunds,
                                                                         notified, forge, status):
    await paid(sandbox, transactions)
    await refunds.create(TRADE, "RF-1", 100, 10_000)
    await sandbox.state.pay.finish_refund("RF-1", deliver=False)
    assert await sandbox.state.pay.notify_payment(TRADE, forge=forge) == [status]
    assert await sandbox.state.pay.notify_refund("RF-1", forge=forge) == [status]
    assert notified == []


async def test_a_replayed_notify_is_rejected(sandbox, transactions, client, notified):
    await paid(sandbox, transactions)
    assert await sandbox.state.pay.notify_payment(TRADE) == [200]
    assert await sandbox.state.pay.send(sandbox.state.pay.last_delivery) == 400  # the very same callback again
    delivery = sandbox.state.pay.payment_notice(sandbox.state.pay.transactions[TRADE])
    await client.open_callback(delivery.headers, delivery.body)
    with pytest.raises(CallbackRejected) as replayed:
        await client.open_callback(delivery.headers, delivery.body)
    assert replayed.value.status == 400 and len(notified) == 1


async def test_injected_errors_surface_as_unclear_or_refused(sandbox, client, transactions, refunds):
    await paid(sandbox, transactions)
    calls = {CREATE_TRANSACTION_ENDPOINT: lambda: transactions.create_jsapi("ORD000002", "商品", 100, BUYER),
             QUERY_TRANSACTION_ENDPOINT: lambda: transactions.query(TRADE),
             CLOSE_TRANSACTION_ENDPOINT: lambda: transactions.close("ORD000002"),
             CREATE_REFUND_ENDPOINT: lambda: refunds.create(TRADE, "RF-1", 100, 10_000),
             QUERY_REFUND_ENDPOINT: lambda: refunds.query("RF-1")}
    for endpoint, call in calls.items():
        for errcode, kind, code in ((500, PayUnclear, "SYSTEM_ERROR"), (429, PayRefused, "FREQUENCY_LIMITED"),
                                    (FORGED_ANSWER, PayUnclear, "UNVERIFIED")):
            sandbox.state.faults.add(Fault(endpoint, errcode=errcode))
            with pytest.raises(kind) as raised:
                await call()
            assert raised.value.code == code, endpoint
        await call()  # the faults are used up: it answers again
    assert sandbox.state.pay.transactions["ORD000002"].trade_state == "CLOSED"

    slow = Transactions(WeChatPayClient(sandbox.base_url, client.keys, client.replays, 0.2), SANDBOX_MINIAPP_APP_ID,
                        SHOP + PAYMENT_NOTIFY_PATH)
    sandbox.state.faults.add(Fault(CREATE_TRANSACTION_ENDPOINT, delay_seconds=0.5))  # made, but answered too late
    with pytest.raises(PayUnclear) as timed_out:
        await slow.create_jsapi("ORD000003", "商品", 100, BUYER)
    assert timed_out.value.code == "NO_ANSWER"
    await slow.client.aclose()
    assert (await transactions.query("ORD000003")).trade_state == "NOTPAY"
