"""WeChat Pay's callbacks (支付回调): a transfer bill reached a final state, a buyer paid, a refund ended.

Not part of the JSON API (WeChat Pay calls them, not a client): answered in WeChat Pay's own way, 200 with
no body when applied (or already applied, or not ours), else 4xx with `{code: FAIL, message}`, which WeChat
Pay retries. A callback that is forged, replayed, too old or does not open with our APIv3 key changes nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime, timezone

from wechatpay import CallbackRejected
from web.base import BaseHandler

log = logging.getLogger(__name__)


class WeChatPayNotifyHandler(BaseHandler):
    what = "callback"

    async def receive(self, headers: Mapping[str, str], body: bytes, now: datetime) -> str:
        raise NotImplementedError

    async def post(self) -> None:
        try:
            outcome = await self.receive(self.request.headers, self.received_body, datetime.now(timezone.utc))
        except CallbackRejected as rejected:
            log.warning("a WeChat Pay %s callback refused (%d): %s", self.what, rejected.status, rejected.reason)
            self.set_status(rejected.status)
            self.set_header("Content-Type", "application/json; charset=utf-8")
            self.finish(json.dumps({"code": "FAIL", "message": rejected.reason}))
            return
        log.info("WeChat Pay %s callback: %s", self.what, outcome)
        self.set_status(200)
        self.finish()


class TransferNotifyHandler(WeChatPayNotifyHandler):
    what = "transfer"

    async def receive(self, headers: Mapping[str, str], body: bytes, now: datetime) -> str:
        return await self.runtime.withdrawals.receive_transfer_notice(headers, body, now)


class PaymentNotifyHandler(WeChatPayNotifyHandler):
    what = "payment"

    async def receive(self, headers: Mapping[str, str], body: bytes, now: datetime) -> str:
        return await self.runtime.checkout.receive_payment_notice(headers, body, now)


class RefundNotifyHandler(WeChatPayNotifyHandler):
    what = "refund"

    async def receive(self, headers: Mapping[str, str], body: bytes, now: datetime) -> str:
        return await self.runtime.checkout.receive_refund_notice(headers, body, now)
