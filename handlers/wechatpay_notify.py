"""WeChat Pay's callbacks (支付回调): a transfer bill reached a final state.

Not part of the JSON API (WeChat Pay calls it, not a client): answered in WeChat Pay's own way, 200 with
no body when applied (or already applied), else 4xx with `{code: FAIL, message}`, which WeChat Pay
retries. A callback that is forged, replayed, too old or does not open with our APIv3 key changes nothing.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

from wechatpay import CallbackRejected
from web.base import BaseHandler

log = logging.getLogger(__name__)


class TransferNotifyHandler(BaseHandler):
    async def post(self) -> None:
        try:
            outcome = await self.runtime.withdrawals.receive_transfer_notice(
                self.request.headers, self.received_body, datetime.now(timezone.utc))
        except CallbackRejected as rejected:
            log.warning("a WeChat Pay transfer callback refused (%d): %s", rejected.status, rejected.reason)
            self.set_status(rejected.status)
            self.set_header("Content-Type", "application/json; charset=utf-8")
            self.finish(json.dumps({"code": "FAIL", "message": rejected.reason}))
            return
        log.info("WeChat Pay transfer callback: %s", outcome)
        self.set_status(200)
        self.finish()
