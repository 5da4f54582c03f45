"""WeChat Pay v3: our signatures, verification and encryption against an independent implementation
(wechatpayv3's utilities), and the client against the sandbox, which verifies what we sign as WeChat Pay
does and signs what it answers."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import httpx
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric import rsa
from wechatpayv3 import utils as independent

from sandbox import Fault
from sandbox.pay import CERTIFICATES_ENDPOINT, CREATE_BILL_ENDPOINT, FORGED_ANSWER
from sandbox.wechat_pay import sandbox_key
from settings import SANDBOX_MINIAPP_APP_ID
from wechatpay import (
    CallbackRejected,
    MerchantKeys,
    PayRefused,
    PaySignatureRejected,
    PayUnclear,
    ReplayGuard,
    Transfer,
    TransferBills,
    WeChatPayClient,
    crypto,
    merchant_keys,
)
from wechatpay.transfer_bills import BILLS_PATH

APIV3_KEY = "0123456789abcdefghijABCDEFGHIJ01"


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return sandbox_key("tests' own key")


def test_a_request_is_signed_as_wechatpayv3_signs_it(key, monkeypatch):
    body = json.dumps({"appid": "wx8888888888888888", "out_bill_no": "plfk2020042013", "transfer_amount": 400000,
                       "transfer_remark": "新会员开通有礼"}, ensure_ascii=False)
    monkeypatch.setattr(independent.time, "time", lambda: 1554208460)
    theirs = independent.build_authorization(f"{BILLS_PATH}?x=1", "POST", "1900009191",
                                             "408B07E79B8269FEC3D5D3E6AB8ED163A6A380DB", key, data=body,
                                             nonce_str="593BEC0C930BF1AFEB40B4A08C8FB242")
    ours = crypto.authorization("1900009191", "408B07E79B8269FEC3D5D3E6AB8ED163A6A380DB", key, "POST",
                                f"{BILLS_PATH}?x=1", body, "1554208460", "593BEC0C930BF1AFEB40B4A08C8FB242")
    assert ours == theirs
    read = crypto.parse_authorization(ours)
    assert (read.mch_id, read.timestamp, read.nonce) == ("1900009191", "1554208460", "593BEC0C930BF1AFEB40B4A08C8FB242")
    assert crypto.verify(key.public_key(), crypto.request_message("POST", f"{BILLS_PATH}?x=1", "1554208460",
                                                                  read.nonce, body), read.signature)


def test_an_answer_signature_verifies_both_ways(key):
    body = '{"state":"SUCCESS","out_bill_no":"plfk2020042013"}'
    theirs = independent.rsa_sign(key, f"1554209980\nc5ac7061fccab6bf3e254dcf98995b8c\n{body}\n")
    assert crypto.verify(key.public_key(), crypto.answer_message("1554209980", "c5ac7061fccab6bf3e254dcf98995b8c", body),
                         theirs)
    ours = crypto.sign(key, crypto.answer_message("1554209980", "c5ac7061fccab6bf3e254dcf98995b8c", body))
    assert ours == theirs
    assert independent.rsa_verify("1554209980", "c5ac7061fccab6bf3e254dcf98995b8c", body, ours, key.public_key())
    assert not crypto.verify(key.public_key(), crypto.answer_message("1554209980", "c5ac7061fccab6bf3e254dcf98995b8c",
                                                                     body + " "), ours)
    assert not crypto.verify(key.public_key(), "anything", "WECHATPAY/SIGNTEST/not-base64")


def test_a_resource_opens_as_wechatpayv3_opens_it_and_not_with_another_key():
    plaintext = json.dumps({"out_bill_no": "plfk2020042013", "state": "SUCCESS"}).encode()
    sealed = crypto.aes_gcm_encrypt(APIV3_KEY, "fdasflkja484w", "mch_payment", plaintext)
    assert independent.aes_decrypt("fdasflkja484w", sealed, "mch_payment", APIV3_KEY) == plaintext.decode()
    assert crypto.aes_gcm_decrypt(APIV3_KEY, "fdasflkja484w", "mch_payment", sealed) == plaintext
    with pytest.raises(crypto.CallbackUndecryptable):
        crypto.aes_gcm_decrypt(APIV3_KEY[::-1], "fdasflkja484w", "mch_payment", sealed)
    with pytest.raises(crypto.CallbackUndecryptable):
        crypto.aes_gcm_decrypt(APIV3_KEY, "fdasflkja484w", "certificate", sealed)


def test_a_sensitive_field_is_encrypted_as_wechatpayv3_encrypts_it(key):
    assert independent.rsa_decrypt(crypto.encrypt_field(key.public_key(), "张三"), key) == "张三"
    assert crypto.decrypt_field(key, independent.rsa_encrypt("张三", key.public_key())) == "张三"


def test_keys_that_are_not_keys_are_refused():
    with pytest.raises(crypto.BadKey):
        crypto.load_private_key(b"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    with pytest.raises(crypto.BadKey):
        crypto.load_public_key(b"not a pem")
    with pytest.raises(crypto.BadKey):
        MerchantKeys("1900000109", "ABCDEF12", sandbox_key("merchant"), "too short")


# --- the client against the sandbox ------------------------------------------------------------------------


@pytest_asyncio.fixture
async def make_client(sandbox, wechat_redis, redis_prefix):
    clients: list[WeChatPayClient] = []

    def make(keys: MerchantKeys | None = None, clock=time.time, timeout: float = 2.0) -> WeChatPayClient:
        keys = keys or merchant_keys(sandbox.state.pay.demo_settings())
        client = WeChatPayClient(sandbox.base_url, keys, ReplayGuard(wechat_redis, redis_prefix), timeout, clock=clock)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


def transfer(number: str = "w0000000001", amount: int = 1_000, user_name: str | None = None) -> Transfer:
    return Transfer(number, SANDBOX_MINIAPP_APP_ID, "o-payee-openid", amount, user_name)


async def test_an_unsigned_or_wrongly_signed_request_is_refused_like_wechat_pay(sandbox, make_client):
    async with httpx.AsyncClient(base_url=sandbox.base_url) as http:
        unsigned = await http.post(f"{BILLS_PATH}", json={"out_bill_no": "x"})
    assert unsigned.status_code == 401 and unsigned.json()["code"] == "SIGN_ERROR"
    assert "Wechatpay-Signature" not in unsigned.headers
    stranger = replace(merchant_keys(sandbox.state.pay.demo_settings()), private_key=sandbox_key("not the merchant's"))
    with pytest.raises(PaySignatureRejected) as refused:
        await TransferBills(make_client(stranger), "https://shop.example.test/n").create(transfer())
    assert "WECHAT_PAY_PRIVATE_KEY_FILE" in refused.value.message
    assert sandbox.state.pay.bills == {}


async def test_a_signed_request_makes_a_bill_and_the_answer_verifies(sandbox, make_client):
    bills = TransferBills(make_client(), "https://shop.example.test/wechatpay/notify/transfer")
    bill = await bills.create(transfer(user_name="张三"))
    assert bill.state == "WAIT_USER_CONFIRM" and bill.package_info
    made = sandbox.state.pay.bills["w0000000001"]
    assert made.user_name == "张三" and made.notify_url == "https://shop.example.test/wechatpay/notify/transfer"
    (call,) = sandbox.state.calls.received(CREATE_BILL_ENDPOINT)
    assert call.body["user_name"] != "张三" and call.body["transfer_scene_report_infos"] == [
        {"info_type": "岗位类型", "info_content": "推广员"}, {"info_type": "报酬说明", "info_content": "推广佣金"}]
    again = await bills.create(transfer(user_name="张三"))
    assert again.transfer_bill_no == bill.transfer_bill_no and len(sandbox.state.pay.bills) == 1
    queried = await bills.query("w0000000001")
    assert queried.state == "WAIT_USER_CONFIRM" and queried.package_info is None
    assert await bills.query("w0000000002") is None
    with pytest.raises(PayRefused) as refused:
        await bills.create(transfer(amount=2_000))  # the same number, another amount
    assert refused.value.code == "INVALID_REQUEST" and not refused.value.retryable


async def test_an_answer_that_does_not_verify_is_never_trusted(sandbox, make_client):
    bills = TransferBills(make_client(), "https://shop.example.test/n")
    sandbox.state.faults.add(Fault(CREATE_BILL_ENDPOINT, errcode=FORGED_ANSWER))
    with pytest.raises(PayUnclear) as unclear:
        await bills.create(transfer())
    assert unclear.value.code == "UNVERIFIED"
    skewed = make_client(clock=lambda: time.time() + 600)  # a clock 10 minutes off: WeChat Pay refuses the request
    with pytest.raises(PaySignatureRejected):
        await TransferBills(skewed, "https://shop.example.test/n").query("w0000000001")


async def test_refusals_are_sorted_by_what_they_allow(sandbox, make_client):
    bills = TransferBills(make_client(), "https://shop.example.test/n")
    for errcode, kind, code in ((402, PayRefused, "NOT_ENOUGH"), (429, PayRefused, "FREQUENCY_LIMITED"),
                                (403, PayRefused, "NO_AUTH"), (500, PayUnclear, "SYSTEM_ERROR"),
                                (401, PaySignatureRejected, "SIGN_ERROR")):
        sandbox.state.faults.add(Fault(CREATE_BILL_ENDPOINT, errcode=errcode))
        with pytest.raises(kind) as raised:
            await bills.create(transfer())
        assert raised.value.code == code
        if kind is PayRefused:
            assert raised.value.retryable == (code != "NO_AUTH")
    sandbox.state.faults.add(Fault(CREATE_BILL_ENDPOINT, delay_seconds=0.5))
    with pytest.raises(PayUnclear) as timed_out:
        await TransferBills(make_client(timeout=0.2), "https://shop.example.test/n").create(transfer())
    assert timed_out.value.code == "NO_ANSWER"


async def test_callbacks_are_verified_opened_and_never_accepted_twice(sandbox, make_client):
    client = make_client()
    await TransferBills(client, "https://shop.example.test/n").create(transfer())
    await sandbox.state.pay.confirm("w0000000001", deliver=False)
    bill = sandbox.state.pay.bills["w0000000001"]
    delivery = sandbox.state.pay.notice(bill)
    notice, resource = await client.open_callback(delivery.headers, delivery.body)
    assert notice["event_type"] == "MCHTRANSFER.BILL.FINISHED"
    assert (resource["out_bill_no"], resource["state"], resource["mchid"]) == ("w0000000001", "SUCCESS", "1900000109")
    with pytest.raises(CallbackRejected) as replayed:
        await client.open_callback(delivery.headers, delivery.body)
    assert replayed.value.status == 400
    for forge, status in (("signature", 401), ("timestamp", 401), ("apiv3_key", 400)):
        forged = sandbox.state.pay.notice(bill, forge)
        with pytest.raises(CallbackRejected) as rejected:
            await client.open_callback(forged.headers, forged.body)
        assert rejected.value.status == status, forge
    with pytest.raises(CallbackRejected):
        await client.open_callback({}, b"{}")


async def test_certificate_mode_downloads_the_certificates_and_follows_a_rotation(sandbox, make_client):
    pay = sandbox.state.pay
    pay.signs_with = "certificate"
    now = [time.time()]
    client = make_client(merchant_keys(replace(pay.demo_settings(), public_key_pem=None, public_key_id=None)),
                         clock=lambda: now[0])
    bills = TransferBills(client, "https://shop.example.test/n")
    await bills.create(transfer(user_name="李四"))
    assert pay.bills["w0000000001"].user_name == "李四"  # encrypted with the platform certificate
    assert len(sandbox.state.calls.received(CERTIFICATES_ENDPOINT)) == 1
    pay.rotate_certificate(sandbox_key("the next platform certificate"))
    now[0] += 61  # past the minute an unknown serial must wait for another download
    assert (await bills.query("w0000000001")).state == "WAIT_USER_CONFIRM"
    assert len(sandbox.state.calls.received(CERTIFICATES_ENDPOINT)) == 2
    pay.rotate_certificate(sandbox_key("a certificate too soon"))
    with pytest.raises(PayUnclear):  # an unknown serial within the minute: not trusted, not downloaded again
        await bills.query("w0000000001")
    assert len(sandbox.state.calls.received(CERTIFICATES_ENDPOINT)) == 2
