"""Buyers paying in the mini-program: WeChat Pay's JSAPI payment (JSAPI/小程序下单).

`POST /v3/pay/transactions/jsapi` makes a prepay for the merchant's `out_trade_no` (6-32 characters of
`[0-9A-Za-z_-|*]`: the caller maps its own order numbers) and answers its `prepay_id`; the mini-program pays
it with `wx.requestPayment`, whose parameters `request_payment` signs with the merchant's key for the same
app. WeChat Pay calls `notify_url` (`TRANSACTION.SUCCESS`) once paid; `GET .../out-trade-no/{no}?mchid=` tells
the state when that callback is late or lost, and `POST .../out-trade-no/{no}/close` closes an unpaid one
(`ORDERPAID` when the buyer paid first: query it, it is paid).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

from . import crypto
from .client import WeChatPayClient
from .errors import PayRefused, PayUnclear

TRANSACTIONS_PATH = "/v3/pay/transactions"
PAYMENT_NOTIFY_PATH = "/wechatpay/notify/payment"
TRANSACTION_SUCCESS = "TRANSACTION.SUCCESS"
TRADE_STATES = frozenset({"SUCCESS", "NOTPAY", "CLOSED", "REFUND", "USERPAYING", "PAYERROR", "REVOKED"})
MAX_DESCRIPTION_CHARACTERS = 127
MAX_TOTAL_FEN = 10**12  # far above any order: a larger amount is not one WeChat Pay would tell
CHINA = timezone(timedelta(hours=8))


@dataclass(frozen=True)
class Transaction:
    out_trade_no: str
    trade_state: str  # one of TRADE_STATES
    total_fen: int
    transaction_id: str | None
    payer_openid: str | None
    success_time: datetime | None  # aware, UTC
    mch_id: str | None
    appid: str | None


def transaction_of(answer: dict[str, Any]) -> Transaction:
    """A transaction from a query's answer or a payment callback's resource; PayUnclear when it is not one."""
    state = answer.get("trade_state")
    amount = answer.get("amount")
    total = amount.get("total") if isinstance(amount, dict) else None
    out_trade_no = answer.get("out_trade_no")
    if state not in TRADE_STATES or not isinstance(out_trade_no, str) or not out_trade_no:
        raise PayUnclear("BAD_ANSWER", f"not a transaction (trade_state {state!r})")
    total_fen = fen_of(total, "amount.total")
    payer = answer.get("payer")
    openid = payer.get("openid") if isinstance(payer, dict) else None
    return Transaction(out_trade_no, state, total_fen, _text(answer.get("transaction_id")), _text(openid),
                       time_of(answer.get("success_time")), _text(answer.get("mchid")), _text(answer.get("appid")))


class Transactions:
    def __init__(self, client: WeChatPayClient, appid: str, notify_url: str):
        self.client = client
        self.appid = appid
        self.notify_url = notify_url

    async def create_jsapi(self, out_trade_no: str, description: str, total_fen: int, payer_openid: str,
                           time_expire: datetime | None = None) -> str:
        """The prepay_id of `out_trade_no` (sent again with the same fields, the same order's). PayRefused
        (ORDERPAID, ORDER_CLOSED, PARAM_ERROR...), PayUnclear or PaySignatureRejected otherwise."""
        body: dict[str, Any] = {
            "appid": self.appid,
            "mchid": self.client.mch_id,
            "description": description[:MAX_DESCRIPTION_CHARACTERS],
            "out_trade_no": out_trade_no,
            "notify_url": self.notify_url,
            "amount": {"total": total_fen, "currency": "CNY"},
            "payer": {"openid": payer_openid},
        }
        if time_expire is not None:
            body["time_expire"] = rfc3339(time_expire)
        answer = await self.client.request("POST", f"{TRANSACTIONS_PATH}/jsapi", body)
        prepay_id = answer.get("prepay_id")
        if not isinstance(prepay_id, str) or not prepay_id:
            raise PayUnclear("BAD_ANSWER", "the answer carries no prepay_id")
        return prepay_id

    async def query(self, out_trade_no: str) -> Transaction | None:
        """The transaction, or None when WeChat Pay has none under this number."""
        try:
            answer = await self.client.request("GET", f"{self._path(out_trade_no)}?mchid={self.client.mch_id}")
        except PayRefused as refused:
            if refused.code == "ORDER_NOT_EXIST":
                return None
            raise
        transaction = transaction_of(answer)
        if transaction.out_trade_no != out_trade_no or transaction.mch_id != self.client.mch_id:
            raise PayUnclear("BAD_ANSWER", "the answer is about another order or another merchant")
        return transaction

    async def close(self, out_trade_no: str) -> None:
        """Closed: the buyer can no longer pay it (also when WeChat Pay never had it). PayRefused ORDERPAID
        when it is paid already."""
        try:
            await self.client.request("POST", f"{self._path(out_trade_no)}/close", {"mchid": self.client.mch_id})
        except PayRefused as refused:
            if refused.code != "ORDER_NOT_EXIST":
                raise

    def request_payment(self, prepay_id: str) -> dict[str, str]:
        """The parameters of `wx.requestPayment` for a prepay made by `create_jsapi`, signed for its app."""
        timestamp, nonce, package = str(int(self.client.clock())), crypto.new_nonce(), f"prepay_id={prepay_id}"
        signature = crypto.sign(self.client.keys.private_key, crypto.payment_message(self.appid, timestamp, nonce,
                                                                                     package))
        return {"appId": self.appid, "timeStamp": timestamp, "nonceStr": nonce, "package": package,
                "signType": "RSA", "paySign": signature}

    @staticmethod
    def _path(out_trade_no: str) -> str:
        return f"{TRANSACTIONS_PATH}/out-trade-no/{quote(out_trade_no, safe='')}"


def rfc3339(moment: datetime) -> str:
    """A time as WeChat Pay writes it: China time with its offset; a naive time is UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(CHINA).isoformat(timespec="seconds")


def time_of(text: Any) -> datetime | None:
    """A time WeChat Pay wrote (RFC 3339, with its offset), in UTC; None when absent or not one."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.astimezone(timezone.utc) if moment.tzinfo is not None else None


def fen_of(value: Any, name: str) -> int:
    """An amount WeChat Pay told, checked to be one; PayUnclear otherwise."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_TOTAL_FEN:
        raise PayUnclear("BAD_ANSWER", f"{name} is not an amount in fen")
    return value


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
