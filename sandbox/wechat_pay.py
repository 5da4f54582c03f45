"""The sandbox's WeChat Pay: a merchant, WeChat Pay's keys, the transfer bills, the JSAPI transactions and
their refunds, and the callbacks.

As WeChat Pay does, it knows the merchant's API public key (by merchant id and certificate serial) to
verify requests, and signs its answers and callbacks with its own key: its public key (`PUB_KEY_ID_...`,
public key mode) when the request names it in `Wechatpay-Serial`, else as `signs_with` says (callbacks too);
in certificate mode with a platform certificate, served by `GET /v3/certificates` encrypted with the APIv3
key. The keys are made once per process (RSA key generation is slow) and handed to a demo or a test by
`merchant_keys` / `merchant_environ`: they are the sandbox's, never a real merchant's.

A bill is made waiting for the payee (WAIT_USER_CONFIRM); `confirm`, `user_cancel`, `fail` and `cancel`
move it as the payee, WeChat Pay and the merchant would, and a final state is told to the bill's
`notify_url` in a signed, encrypted callback (`deliver_to` reroutes it to where a test's server listens).
A transaction is made NOTPAY by a prepay; `pay` is the buyer paying it (TRANSACTION.SUCCESS follows). A refund
is made PROCESSING; `finish_refund` ends it (REFUND.SUCCESS, CLOSED or ABNORMAL follows), or it succeeds by
itself after `refunds_succeed_after` seconds when that is set. `sealed_notice`'s `forge` spoils any callback
for a test, and `send(last_delivery)` replays the last one.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import functools
import itertools
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID

from settings import WeChatPaySettings

SANDBOX_MCH_ID = "1900000109"
SANDBOX_MCH_CERT_SERIAL = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
SANDBOX_APIV3_KEY = "sandboxApiV3KeyNotForProduction0"
SANDBOX_PUBLIC_KEY_ID = "PUB_KEY_ID_0119000001092025010100000000000000"
WRONG_APIV3_KEY = "notTheMerchantsApiV3Key000000000"  # encrypts a forged callback
CALLBACK_TIMEOUT_SECONDS = 5.0
MAX_CLOCK_SKEW_SECONDS = 300
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
CHINA = dt.timezone(dt.timedelta(hours=8))

Forgery = Literal["signature", "timestamp", "apiv3_key", "tampered"]


@functools.cache
def sandbox_key(name: str) -> RSAPrivateKey:
    """One RSA key per name and process: the merchant's API key, WeChat Pay's public key pair."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _public_pem(key: RSAPublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


# --- WeChat Pay's side of the cryptography ------------------------------------------------------------

_OAEP = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
_AUTHORIZATION = re.compile(r'^WECHATPAY2-SHA256-RSA2048 (.*)$')
_PARAMETER = re.compile(r'([a-z_]+)="([^"]*)"')


def rsa_sign(key: RSAPrivateKey, message: str) -> str:
    return base64.b64encode(key.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()


def rsa_verifies(key: RSAPublicKey, message: str, signature: str) -> bool:
    try:
        key.verify(base64.b64decode(signature), message.encode(), padding.PKCS1v15(), hashes.SHA256())
    except (ValueError, InvalidSignature):
        return False
    return True


def aes_gcm_seal(apiv3_key: str, nonce: str, associated_data: str, plaintext: bytes) -> str:
    return base64.b64encode(AESGCM(apiv3_key.encode()).encrypt(nonce.encode(), plaintext,
                                                               associated_data.encode())).decode()


def oaep_open(key: RSAPrivateKey, ciphertext: str) -> str | None:
    try:
        return key.decrypt(base64.b64decode(ciphertext), _OAEP).decode()
    except ValueError:
        return None


def certificate_serial(certificate: x509.Certificate) -> str:
    return format(certificate.serial_number, "X")


@dataclass(frozen=True)
class PlatformCertificate:
    serial: str
    certificate: x509.Certificate
    key: RSAPrivateKey


def make_platform_certificate(key: RSAPrivateKey, serial_number: int, now: dt.datetime) -> PlatformCertificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA (sandbox)")])
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(serial_number).not_valid_before(now - dt.timedelta(days=1))
                   .not_valid_after(now + dt.timedelta(days=5 * 365)).sign(key, hashes.SHA256()))
    return PlatformCertificate(certificate_serial(certificate), certificate, key)


@dataclass
class SandboxBill:
    out_bill_no: str
    transfer_bill_no: str
    appid: str
    openid: str
    transfer_amount: int
    transfer_remark: str
    notify_url: str
    scene_id: str
    user_name: str | None
    state: str
    package_info: str
    create_time: str
    update_time: str
    fail_reason: str | None = None
    notices_sent: list[int] = field(default_factory=list)  # the HTTP status of each callback delivered


@dataclass
class SandboxTransaction:
    out_trade_no: str
    prepay_id: str
    appid: str
    description: str
    notify_url: str
    total: int
    openid: str
    time_expire: dt.datetime | None
    create_time: str
    trade_state: str = "NOTPAY"
    transaction_id: str | None = None
    success_time: str | None = None
    notices_sent: list[int] = field(default_factory=list)


@dataclass
class SandboxRefund:
    out_refund_no: str
    refund_id: str
    out_trade_no: str
    transaction_id: str
    refund: int
    total: int
    reason: str | None
    notify_url: str
    create_time: str
    status: str = "PROCESSING"
    success_time: str | None = None
    notices_sent: list[int] = field(default_factory=list)


RefundEnding = Literal["SUCCESS", "CLOSED", "ABNORMAL"]
REFUND_SUMMARIES = {"SUCCESS": "退款成功", "CLOSED": "退款关闭", "ABNORMAL": "退款异常"}


@dataclass(frozen=True)
class Delivery:
    url: str
    headers: dict[str, str]
    body: bytes


def china_now() -> str:
    return dt.datetime.now(CHINA).isoformat(timespec="seconds")


class SandboxPay:
    def __init__(self) -> None:
        self.mch_id = SANDBOX_MCH_ID
        self.apiv3_key = SANDBOX_APIV3_KEY
        self.merchant_key = sandbox_key("merchant")
        # (merchant id, API certificate serial) -> the merchant's public key, as uploaded to WeChat Pay.
        self.merchants: dict[tuple[str, str], RSAPublicKey] = {
            (SANDBOX_MCH_ID, SANDBOX_MCH_CERT_SERIAL): self.merchant_key.public_key()}
        self.public_key_id = SANDBOX_PUBLIC_KEY_ID
        self.public_key_pair = sandbox_key("wechatpay-public-key")
        self.certificates: list[PlatformCertificate] = []  # made on first use: certificate mode only
        self.signs_with: Literal["public_key", "certificate"] = "public_key"
        self.bills: dict[str, SandboxBill] = {}
        self.deliver_to: str | None = None  # a base URL that stands in for each notify URL's scheme and host
        self.cancel_takes_time = False  # cancel answers CANCELING, until `finish_cancel`
        self.transactions: dict[str, SandboxTransaction] = {}  # by out_trade_no
        self.prepays: dict[str, str] = {}  # prepay_id -> out_trade_no
        self.refunds: dict[str, SandboxRefund] = {}  # by out_refund_no
        # None: a refund stays PROCESSING until `finish_refund`; else it succeeds by itself that many seconds later.
        self.refunds_succeed_after: float | None = None
        self.last_delivery: Delivery | None = None
        self._bill_numbers = itertools.count(1)
        self._trade_numbers = itertools.count(1)
        self._background: set[asyncio.Task] = set()

    # --- what the merchant (a demo, a test) is given ---------------------------------------------

    def demo_settings(self) -> WeChatPaySettings:
        """What demo mode pays with: this sandbox's merchant, in public key mode."""
        return WeChatPaySettings(mch_id=self.mch_id, apiv3_key=self.apiv3_key, private_key_pem=_pem(self.merchant_key),
                                 cert_serial=SANDBOX_MCH_CERT_SERIAL,
                                 public_key_pem=_public_pem(self.public_key_pair.public_key()),
                                 public_key_id=self.public_key_id)

    def merchant_environ(self, directory: Path, public_key_mode: bool = True) -> dict[str, str]:
        """The WECHAT_PAY_* settings of this sandbox's merchant, with its key files written in `directory`."""
        directory.mkdir(parents=True, exist_ok=True)
        private = directory / "apiclient_key.pem"
        private.write_bytes(_pem(self.merchant_key))
        environ = {"WECHAT_PAY_MCH_ID": self.mch_id, "WECHAT_PAY_APIV3_KEY": self.apiv3_key,
                   "WECHAT_PAY_PRIVATE_KEY_FILE": str(private), "WECHAT_PAY_CERT_SERIAL": SANDBOX_MCH_CERT_SERIAL}
        if public_key_mode:
            public = directory / "pub_key.pem"
            public.write_bytes(_public_pem(self.public_key_pair.public_key()))
            environ |= {"WECHAT_PAY_PUBLIC_KEY_FILE": str(public), "WECHAT_PAY_PUBLIC_KEY_ID": self.public_key_id}
        return environ

    # --- keys ------------------------------------------------------------------------------------

    def platform_certificates(self) -> list[PlatformCertificate]:
        if not self.certificates:
            self.rotate_certificate(sandbox_key("platform-certificate"))
        return self.certificates

    def rotate_certificate(self, key: RSAPrivateKey | None = None) -> PlatformCertificate:
        """A new platform certificate, which signs from now on; the older ones stay listed."""
        made = make_platform_certificate(key or rsa.generate_private_key(public_exponent=65537, key_size=2048),
                                         x509.random_serial_number(), dt.datetime.now(dt.timezone.utc))
        self.certificates.append(made)
        return made

    def sealed_certificate(self, made: PlatformCertificate) -> dict[str, Any]:
        """One entry of `GET /v3/certificates`: the certificate encrypted with the APIv3 key."""
        nonce = secrets.token_hex(6)
        pem = made.certificate.public_bytes(serialization.Encoding.PEM)
        return {"serial_no": made.serial,
                "effective_time": made.certificate.not_valid_before_utc.astimezone(CHINA).isoformat(),
                "expire_time": made.certificate.not_valid_after_utc.astimezone(CHINA).isoformat(),
                "encrypt_certificate": {"algorithm": "AEAD_AES_256_GCM", "nonce": nonce, "associated_data": "certificate",
                                        "ciphertext": aes_gcm_seal(self.apiv3_key, nonce, "certificate", pem)}}

    def signing_key(self, serial: str | None) -> tuple[str, RSAPrivateKey]:
        """The key an answer is signed with: the one the request named, else as `signs_with` says."""
        if serial == self.public_key_id or (serial is None and self.signs_with == "public_key"):
            return self.public_key_id, self.public_key_pair
        named = [each for each in self.platform_certificates() if each.serial == serial]
        newest = (named or self.platform_certificates())[-1]
        return newest.serial, newest.key

    def decrypting_key(self, serial: str | None) -> RSAPrivateKey | None:
        """The private key of what `Wechatpay-Serial` names, for a request's encrypted fields."""
        if serial == self.public_key_id:
            return self.public_key_pair
        return next((each.key for each in self.certificates if each.serial == serial), None)

    def sign(self, body: str, serial: str | None, timestamp: int | None = None,
             key: RSAPrivateKey | None = None) -> dict[str, str]:
        """The headers WeChat Pay signs an answer or a callback with."""
        serial, signing = self.signing_key(serial)
        stamp, nonce = str(timestamp if timestamp is not None else int(time.time())), secrets.token_hex(16).upper()
        signature = rsa_sign(key or signing, f"{stamp}\n{nonce}\n{body}\n")
        return {"Wechatpay-Timestamp": stamp, "Wechatpay-Nonce": nonce, "Wechatpay-Signature": signature,
                "Wechatpay-Serial": serial, "Wechatpay-Signature-Type": SIGNATURE_TYPE}

    def verify_request(self, method: str, uri: str, body: str, header: str | None) -> str | None:
        """Why the request's signature is refused (WeChat Pay's 401 SIGN_ERROR), or None."""
        scheme = _AUTHORIZATION.match(header or "")
        if scheme is None:
            return "no WECHATPAY2-SHA256-RSA2048 Authorization"
        signed = dict(_PARAMETER.findall(scheme.group(1)))
        if not {"mchid", "nonce_str", "signature", "timestamp", "serial_no"} <= signed.keys():
            return "the Authorization lacks a parameter"
        key = self.merchants.get((signed["mchid"], signed["serial_no"]))
        if key is None:
            return "unknown merchant id or certificate serial"
        try:
            skew = abs(time.time() - int(signed["timestamp"]))
        except ValueError:
            return "the timestamp is not a number"
        if skew > MAX_CLOCK_SKEW_SECONDS:
            return "the timestamp is too far from now"
        message = f"{method}\n{uri}\n{signed['timestamp']}\n{signed['nonce_str']}\n{body}\n"
        if not rsa_verifies(key, message, signed["signature"]):
            return "the signature does not verify"
        return None

    # --- bills -------------------------------------------------------------------------------------

    def new_bill(self, body: dict[str, Any], user_name: str | None) -> SandboxBill:
        now = china_now()
        bill = SandboxBill(
            out_bill_no=body["out_bill_no"], transfer_bill_no=f"1330000114850082502100{next(self._bill_numbers):016d}",
            appid=body["appid"], openid=body["openid"], transfer_amount=body["transfer_amount"],
            transfer_remark=body["transfer_remark"], notify_url=body.get("notify_url") or "",
            scene_id=body["transfer_scene_id"], user_name=user_name, state="WAIT_USER_CONFIRM",
            package_info=f"ABBQO+oYAAABAAAAAAAk+yPWGaEAAAAAAA{secrets.token_urlsafe(24)}", create_time=now,
            update_time=now)
        self.bills[bill.out_bill_no] = bill
        return bill

    def move(self, out_bill_no: str, state: str, fail_reason: str | None = None) -> SandboxBill:
        bill = self.bills[out_bill_no]
        bill.state, bill.update_time = state, china_now()
        if fail_reason:
            bill.fail_reason = fail_reason
        return bill

    async def confirm(self, out_bill_no: str, finish: bool = True, deliver: bool = True) -> SandboxBill:
        """The payee accepts the bill in WeChat: TRANSFERING, then (`finish`) SUCCESS, told by callback."""
        bill = self._waiting(out_bill_no)
        self.move(out_bill_no, "TRANSFERING")
        if finish:
            self.move(out_bill_no, "SUCCESS")
            if deliver:
                await self.notify(out_bill_no)
        return bill

    async def fail(self, out_bill_no: str, reason: str = "TRANSFER_SCENE_UNAVAILABLE",
                   deliver: bool = True) -> SandboxBill:
        """WeChat Pay closes the bill as FAIL (as it does after about 24 hours unconfirmed)."""
        bill = self.move(out_bill_no, "FAIL", reason)
        if deliver:
            await self.notify(out_bill_no)
        return bill

    async def user_cancel(self, out_bill_no: str, deliver: bool = True) -> SandboxBill:
        """The bill is cancelled before the payee accepted it."""
        self._waiting(out_bill_no)
        bill = self.move(out_bill_no, "CANCELLED")
        if deliver:
            await self.notify(out_bill_no)
        return bill

    def cancel(self, out_bill_no: str) -> SandboxBill:
        """The merchant's cancel: CANCELLED at once, or CANCELING (`cancel_takes_time`); the callback follows
        in the background, as WeChat Pay's does."""
        self._waiting(out_bill_no)
        if self.cancel_takes_time:
            return self.move(out_bill_no, "CANCELING")
        bill = self.move(out_bill_no, "CANCELLED")
        self._in_background(self.notify(out_bill_no))
        return bill

    async def finish_cancel(self, out_bill_no: str, deliver: bool = True) -> SandboxBill:
        bill = self.move(out_bill_no, "CANCELLED")
        if deliver:
            await self.notify(out_bill_no)
        return bill

    def _waiting(self, out_bill_no: str) -> SandboxBill:
        bill = self.bills[out_bill_no]
        if bill.state not in ("ACCEPTED", "PROCESSING", "WAIT_USER_CONFIRM"):
            raise BillNotWaiting(f"the bill is {bill.state}")
        return bill

    def answer(self, bill: SandboxBill) -> dict[str, Any]:
        """The answer to create (and to a repeated create)."""
        answer = {"out_bill_no": bill.out_bill_no, "transfer_bill_no": bill.transfer_bill_no,
                  "create_time": bill.create_time, "state": bill.state}
        if bill.state == "WAIT_USER_CONFIRM":
            answer["package_info"] = bill.package_info
        if bill.fail_reason:
            answer["fail_reason"] = bill.fail_reason
        return answer

    def query_answer(self, bill: SandboxBill) -> dict[str, Any]:
        answer = {"mch_id": self.mch_id, "out_bill_no": bill.out_bill_no, "transfer_bill_no": bill.transfer_bill_no,
                  "appid": bill.appid, "state": bill.state, "transfer_amount": bill.transfer_amount,
                  "transfer_remark": bill.transfer_remark, "openid": bill.openid, "create_time": bill.create_time,
                  "update_time": bill.update_time}
        if bill.fail_reason:
            answer["fail_reason"] = bill.fail_reason
        return answer

    # --- JSAPI payments ------------------------------------------------------------------------------

    def prepay(self, body: dict[str, Any], time_expire: dt.datetime | None) -> SandboxTransaction:
        """The transaction a JSAPI create makes; sent again with the same fields, the same one."""
        existing = self.transactions.get(body["out_trade_no"])
        if existing is not None:
            self._unpaid(existing)
            if (existing.appid, existing.openid, existing.total, existing.description) != (
                    body["appid"], body["payer"]["openid"], body["amount"]["total"], body["description"]):
                raise TradeRefused("INVALID_REQUEST", "商户订单号重复, 且请求参数与原单不一致")
            return existing
        number = next(self._trade_numbers)
        transaction = SandboxTransaction(
            out_trade_no=body["out_trade_no"], prepay_id=f"wx{dt.datetime.now(CHINA):%Y%m%d%H%M%S}{number:020d}",
            appid=body["appid"], description=body["description"], notify_url=body["notify_url"],
            total=body["amount"]["total"], openid=body["payer"]["openid"], time_expire=time_expire,
            create_time=china_now())
        self.transactions[transaction.out_trade_no] = transaction
        self.prepays[transaction.prepay_id] = transaction.out_trade_no
        return transaction

    async def pay(self, out_trade_no: str, deliver: bool = True, times: int = 1) -> SandboxTransaction:
        """The buyer pays in WeChat: SUCCESS, told to the notify URL `times` times (not at all unless `deliver`)."""
        transaction = self.transactions[out_trade_no]
        self._unpaid(transaction)
        if transaction.time_expire is not None and dt.datetime.now(dt.timezone.utc) > transaction.time_expire:
            raise TradeRefused("ORDER_CLOSED", "订单已过期")
        transaction.trade_state, transaction.success_time = "SUCCESS", china_now()
        transaction.transaction_id = f"42000{next(self._trade_numbers):023d}"
        if deliver:
            await self.notify_payment(out_trade_no, times)
        return transaction

    def close_transaction(self, out_trade_no: str) -> SandboxTransaction:
        """The merchant closes an unpaid transaction (closing it again changes nothing); ORDERPAID once paid."""
        transaction = self.transactions[out_trade_no]
        if transaction.trade_state in ("SUCCESS", "REFUND"):
            raise TradeRefused("ORDERPAID", "订单已支付")
        transaction.trade_state = "CLOSED"
        return transaction

    def transaction_answer(self, transaction: SandboxTransaction) -> dict[str, Any]:
        """The answer to a query, and a payment callback's resource."""
        paid = transaction.transaction_id is not None
        answer: dict[str, Any] = {
            "appid": transaction.appid, "mchid": self.mch_id, "out_trade_no": transaction.out_trade_no,
            "trade_type": "JSAPI", "trade_state": transaction.trade_state,
            "trade_state_desc": {"NOTPAY": "未支付", "CLOSED": "已关闭", "REFUND": "转入退款"}.get(
                transaction.trade_state, "支付成功"),
            "attach": "", "payer": {"openid": transaction.openid},
            "amount": {"total": transaction.total, "currency": "CNY", "payer_currency": "CNY"}}
        if paid:
            answer |= {"transaction_id": transaction.transaction_id, "bank_type": "OTHERS",
                       "success_time": transaction.success_time}
            answer["amount"]["payer_total"] = transaction.total
        return answer

    def verify_request_payment(self, parameters: dict[str, Any]) -> str | None:
        """Why `wx.requestPayment` would refuse these parameters, or None: the prepay must be one of this
        sandbox's, `appId` its app, and `paySign` the merchant's signature."""
        if parameters.get("signType") != "RSA":
            return "signType must be RSA"
        package = parameters.get("package")
        out_trade_no = self.prepays.get(package.removeprefix("prepay_id=")) if isinstance(package, str) else None
        if out_trade_no is None:
            return "package names no prepay of this merchant"
        if parameters.get("appId") != self.transactions[out_trade_no].appid:
            return "appId is not the app the order was made for"
        fields = [parameters.get(name) for name in ("appId", "timeStamp", "nonceStr", "package", "paySign")]
        if not all(isinstance(each, str) and each for each in fields):
            return "a parameter is missing"
        message = "".join(f"{each}\n" for each in fields[:4])
        if not rsa_verifies(self.merchants[(self.mch_id, SANDBOX_MCH_CERT_SERIAL)], message, fields[4]):
            return "paySign does not verify with the merchant's key"
        return None

    @staticmethod
    def _unpaid(transaction: SandboxTransaction) -> None:
        if transaction.trade_state in ("SUCCESS", "REFUND"):
            raise TradeRefused("ORDERPAID", "该订单已支付")
        if transaction.trade_state == "CLOSED":
            raise TradeRefused("ORDER_CLOSED", "订单已关闭")

    # --- refunds -------------------------------------------------------------------------------------

    def new_refund(self, body: dict[str, Any]) -> SandboxRefund:
        """The refund a create makes: of a paid transaction, for its whole total, never more than is left;
        sent again with the same fields, the same one."""
        amount = body["amount"]
        existing = self.refunds.get(body["out_refund_no"])
        if existing is not None:
            if (existing.out_trade_no, existing.refund, existing.total) != (
                    body["out_trade_no"], amount["refund"], amount["total"]):
                raise TradeRefused("INVALID_REQUEST", "退款单号重复, 且请求参数与原退款单不一致")
            return existing
        transaction = self.transactions.get(body["out_trade_no"])
        if transaction is None:
            raise TradeRefused("RESOURCE_NOT_EXISTS", "订单不存在", status=404)
        if transaction.transaction_id is None:
            raise TradeRefused("INVALID_REQUEST", "订单未支付, 不可退款")
        if amount["total"] != transaction.total:
            raise TradeRefused("PARAM_ERROR", "amount.total 须等于原订单金额")
        if amount["refund"] > self.refundable(transaction.out_trade_no):
            raise TradeRefused("INVALID_REQUEST", "申请退款金额超过订单可退金额")
        refund = SandboxRefund(
            out_refund_no=body["out_refund_no"], refund_id=f"50000{next(self._trade_numbers):024d}",
            out_trade_no=transaction.out_trade_no, transaction_id=transaction.transaction_id,
            refund=amount["refund"], total=amount["total"], reason=body.get("reason"),
            notify_url=body.get("notify_url") or "", create_time=china_now())
        self.refunds[refund.out_refund_no] = refund
        if self.refunds_succeed_after is not None:
            self._in_background(self._succeed_later(refund.out_refund_no, self.refunds_succeed_after))
        return refund

    def refundable(self, out_trade_no: str) -> int:
        """What is left to refund of a transaction: its total less every refund not closed."""
        taken = sum(each.refund for each in self.refunds.values()
                    if each.out_trade_no == out_trade_no and each.status != "CLOSED")
        return self.transactions[out_trade_no].total - taken

    async def finish_refund(self, out_refund_no: str, ending: RefundEnding = "SUCCESS",
                            deliver: bool = True) -> SandboxRefund:
        """WeChat Pay ends a refund still PROCESSING (or ABNORMAL) and tells its notify URL."""
        refund = self.refunds[out_refund_no]
        if refund.status not in ("PROCESSING", "ABNORMAL"):
            raise TradeRefused("INVALID_REQUEST", f"the refund is {refund.status}")
        refund.status = ending
        if ending == "SUCCESS":
            refund.success_time = china_now()
            self.transactions[refund.out_trade_no].trade_state = "REFUND"
        if deliver:
            await self.notify_refund(out_refund_no)
        return refund

    def refund_answer(self, refund: SandboxRefund) -> dict[str, Any]:
        """The answer to a refund's create and query."""
        answer: dict[str, Any] = {
            "refund_id": refund.refund_id, "out_refund_no": refund.out_refund_no,
            "transaction_id": refund.transaction_id, "out_trade_no": refund.out_trade_no, "channel": "ORIGINAL",
            "user_received_account": "支付用户零钱", "create_time": refund.create_time, "status": refund.status,
            "funds_account": "AVAILABLE",
            "amount": {"total": refund.total, "refund": refund.refund, "payer_total": refund.total,
                       "payer_refund": refund.refund, "settlement_total": refund.total,
                       "settlement_refund": refund.refund, "discount_refund": 0, "currency": "CNY", "refund_fee": 0}}
        if refund.success_time:
            answer["success_time"] = refund.success_time
        return answer

    async def _succeed_later(self, out_refund_no: str, seconds: float) -> None:
        await asyncio.sleep(seconds)
        if self.refunds[out_refund_no].status == "PROCESSING":
            await self.finish_refund(out_refund_no)

    # --- callbacks -----------------------------------------------------------------------------------

    def notice(self, bill: SandboxBill, forge: Forgery | None = None) -> Delivery:
        """MCHTRANSFER.BILL.FINISHED for `bill`, signed and encrypted; `forge` spoils one part of it."""
        resource = {"mchid": self.mch_id, "out_bill_no": bill.out_bill_no, "transfer_bill_no": bill.transfer_bill_no,
                    "transfer_amount": bill.transfer_amount, "state": bill.state, "openid": bill.openid,
                    "create_time": bill.create_time, "update_time": bill.update_time}
        if bill.fail_reason:
            resource["fail_reason"] = bill.fail_reason
        return self.sealed_notice(bill.notify_url, "MCHTRANSFER.BILL.FINISHED", "商家转账单据终态通知", "mch_payment",
                                  resource, forge)

    def sealed_notice(self, notify_url: str, event_type: str, summary: str, original_type: str,
                      resource: dict[str, Any], forge: Forgery | None = None) -> Delivery:
        """A callback as WeChat Pay sends it: `resource` encrypted with the APIv3 key, the body signed; `forge`
        spoils one part of it (another signer, a stale timestamp, another APIv3 key, or a body changed after
        it was signed)."""
        nonce = secrets.token_hex(6)
        key = WRONG_APIV3_KEY if forge == "apiv3_key" else self.apiv3_key
        body = json.dumps({
            "id": f"EV-{secrets.token_hex(12)}", "create_time": china_now(), "resource_type": "encrypt-resource",
            "event_type": event_type, "summary": summary,
            "resource": {"original_type": original_type, "algorithm": "AEAD_AES_256_GCM",
                         "associated_data": original_type, "nonce": nonce,
                         "ciphertext": aes_gcm_seal(key, nonce, original_type, json.dumps(resource).encode())},
        }, ensure_ascii=False)
        stamp = int(time.time()) - (MAX_CLOCK_SKEW_SECONDS + 60 if forge == "timestamp" else 0)
        headers = self.sign(body, None, stamp, key=sandbox_key("forger") if forge == "signature" else None)
        if forge == "tampered":
            body = body.replace(f'"summary": "{summary}"', '"summary": "tampered"')
        return Delivery(self._notify_url(notify_url), {**headers, "Content-Type": "application/json"}, body.encode())

    def payment_notice(self, transaction: SandboxTransaction, forge: Forgery | None = None,
                       total_fen: int | None = None) -> Delivery:
        """TRANSACTION.SUCCESS for a paid `transaction`; `total_fen` tells another amount than it has."""
        resource = self.transaction_answer(transaction) | {"trade_state": "SUCCESS", "trade_state_desc": "支付成功"}
        if total_fen is not None:
            resource["amount"] |= {"total": total_fen, "payer_total": total_fen}
        return self.sealed_notice(transaction.notify_url, "TRANSACTION.SUCCESS", "支付成功", "transaction", resource,
                                  forge)

    def refund_notice(self, refund: SandboxRefund, forge: Forgery | None = None) -> Delivery:
        """REFUND.SUCCESS, REFUND.CLOSED or REFUND.ABNORMAL for an ended `refund`."""
        resource: dict[str, Any] = {
            "mchid": self.mch_id, "out_trade_no": refund.out_trade_no, "transaction_id": refund.transaction_id,
            "out_refund_no": refund.out_refund_no, "refund_id": refund.refund_id, "refund_status": refund.status,
            "user_received_account": "支付用户零钱",
            "amount": {"total": refund.total, "refund": refund.refund, "payer_total": refund.total,
                       "payer_refund": refund.refund}}
        if refund.success_time:
            resource["success_time"] = refund.success_time
        return self.sealed_notice(refund.notify_url, f"REFUND.{refund.status}", REFUND_SUMMARIES[refund.status],
                                  "refund", resource, forge)

    async def notify(self, out_bill_no: str, times: int = 1, forge: Forgery | None = None) -> list[int]:
        """Tell the bill's state to its notify URL `times` times (each signed anew, as WeChat Pay's
        redeliveries are); the HTTP status of each delivery (0: no answer)."""
        bill = self.bills[out_bill_no]
        return await self._deliver(lambda: self.notice(bill, forge), times, bill.notices_sent)

    async def notify_payment(self, out_trade_no: str, times: int = 1, forge: Forgery | None = None,
                             total_fen: int | None = None) -> list[int]:
        """Tell that the transaction is paid, as `notify` tells a bill's state."""
        transaction = self.transactions[out_trade_no]
        return await self._deliver(lambda: self.payment_notice(transaction, forge, total_fen), times,
                                   transaction.notices_sent)

    async def notify_refund(self, out_refund_no: str, times: int = 1, forge: Forgery | None = None) -> list[int]:
        """Tell how the refund ended, as `notify` tells a bill's state."""
        refund = self.refunds[out_refund_no]
        return await self._deliver(lambda: self.refund_notice(refund, forge), times, refund.notices_sent)

    async def _deliver(self, notice: Callable[[], Delivery], times: int, sent: list[int]) -> list[int]:
        statuses = [await self.send(notice()) for _ in range(times)]
        sent.extend(statuses)
        return statuses

    async def send(self, delivery: Delivery) -> int:
        """Deliver one callback; replaying a recorded one resends it byte for byte."""
        self.last_delivery = delivery
        try:
            async with httpx.AsyncClient(timeout=CALLBACK_TIMEOUT_SECONDS) as http:
                response = await http.post(delivery.url, content=delivery.body, headers=delivery.headers)
        except httpx.HTTPError:
            return 0
        return response.status_code

    async def settle(self) -> None:
        """Wait for the callbacks still being delivered in the background."""
        while self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    def _in_background(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _notify_url(self, url: str) -> str:
        if not self.deliver_to:
            return url
        parts = urlsplit(url)
        return self.deliver_to.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")


class BillNotWaiting(ValueError):
    """The payee accepted the bill already, or it is final: it can no longer be cancelled."""


class TradeRefused(ValueError):
    """What WeChat Pay answers a payment or refund it will not do: its HTTP status and code."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.status = code, message, status

