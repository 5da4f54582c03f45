"""Giving a buyer's money back: WeChat Pay's refunds (退款申请) of a JSAPI payment.

`POST /v3/refund/domestic/refunds` refunds part or all of a paid order under the merchant's `out_refund_no`
(sent again, it answers the same refund, never a second one); `amount.total` is the order's whole total and
`amount.refund` what goes back now, never more than is left. A refund is PROCESSING until WeChat Pay makes it
SUCCESS, CLOSED or ABNORMAL, and calls `notify_url` (`REFUND.SUCCESS` / `REFUND.CLOSED` / `REFUND.ABNORMAL`);
`GET .../refunds/{out_refund_no}` tells its state when that callback is late or lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from .client import WeChatPayClient
from .errors import PayRefused, PayUnclear
from .transactions import fen_of, time_of

REFUNDS_PATH = "/v3/refund/domestic/refunds"
REFUND_NOTIFY_PATH = "/wechatpay/notify/refund"
REFUND_EVENTS = {"REFUND.SUCCESS": "SUCCESS", "REFUND.CLOSED": "CLOSED", "REFUND.ABNORMAL": "ABNORMAL"}
REFUND_STATUSES = frozenset({"SUCCESS", "CLOSED", "PROCESSING", "ABNORMAL"})
MAX_REASON_CHARACTERS = 80


@dataclass(frozen=True)
class Refund:
    out_refund_no: str
    out_trade_no: str
    refund_id: str | None
    status: str  # one of REFUND_STATUSES
    refund_fen: int
    total_fen: int
    success_time: datetime | None  # aware, UTC


def refund_of(answer: dict[str, Any]) -> Refund:
    """A refund from an answer (`status`) or a refund callback's resource (`refund_status`); PayUnclear when it
    is not one."""
    status = answer.get("status", answer.get("refund_status"))
    out_refund_no, out_trade_no = answer.get("out_refund_no"), answer.get("out_trade_no")
    amount = answer.get("amount")
    if status not in REFUND_STATUSES or not isinstance(amount, dict) or not isinstance(out_refund_no, str) \
            or not out_refund_no or not isinstance(out_trade_no, str) or not out_trade_no:
        raise PayUnclear("BAD_ANSWER", f"not a refund (status {status!r})")
    refund_id = answer.get("refund_id")
    return Refund(out_refund_no, out_trade_no, refund_id if isinstance(refund_id, str) and refund_id else None,
                  status, fen_of(amount.get("refund"), "amount.refund"), fen_of(amount.get("total"), "amount.total"),
                  time_of(answer.get("success_time")))


class Refunds:
    def __init__(self, client: WeChatPayClient, notify_url: str):
        self.client = client
        self.notify_url = notify_url

    async def create(self, out_trade_no: str, out_refund_no: str, refund_fen: int, total_fen: int,
                     reason: str | None = None) -> Refund:
        """The refund under `out_refund_no`, made now or before (usually PROCESSING). PayRefused when WeChat
        Pay will not (more than is left, an unpaid order, NOT_ENOUGH: the merchant's balance is short...),
        PayUnclear or PaySignatureRejected otherwise."""
        body: dict[str, Any] = {
            "out_trade_no": out_trade_no,
            "out_refund_no": out_refund_no,
            "notify_url": self.notify_url,
            "amount": {"refund": refund_fen, "total": total_fen, "currency": "CNY"},
        }
        if reason:
            body["reason"] = reason[:MAX_REASON_CHARACTERS]
        refund = refund_of(await self.client.request("POST", REFUNDS_PATH, body))
        if (refund.out_refund_no, refund.out_trade_no) != (out_refund_no, out_trade_no):
            raise PayUnclear("BAD_ANSWER", "the answer is about another refund")
        return refund

    async def query(self, out_refund_no: str) -> Refund | None:
        """The refund, or None when WeChat Pay has none under this number."""
        try:
            answer = await self.client.request("GET", f"{REFUNDS_PATH}/{quote(out_refund_no, safe='')}")
        except PayRefused as refused:
            if refused.code == "RESOURCE_NOT_EXISTS":
                return None
            raise
        refund = refund_of(answer)
        if refund.out_refund_no != out_refund_no:
            raise PayUnclear("BAD_ANSWER", "the answer is about another refund")
        return refund
