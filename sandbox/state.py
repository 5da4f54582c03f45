"""Everything the sandbox knows and remembers, reachable in-process by tests."""

from __future__ import annotations

import itertools
from typing import Any, Mapping

from settings import SANDBOX_MINIAPP_APP_ID, SANDBOX_MINIAPP_APP_SECRET, SANDBOX_OA_APP_ID, SANDBOX_OA_APP_SECRET

from .calls import CallLog
from .errors import SandboxError
from .faults import Faults
from .media import MediaStore
from .risk_ranks import RiskRanks
from .tokens import TokenIssuer
from .web_auth import AuthCodes
from .wechat_pay import SandboxPay

DEFAULT_APPS = {
    SANDBOX_OA_APP_ID: SANDBOX_OA_APP_SECRET,
    SANDBOX_MINIAPP_APP_ID: SANDBOX_MINIAPP_APP_SECRET,
}


class SandboxState:
    def __init__(self, apps: Mapping[str, str] = DEFAULT_APPS, token_lifetime_seconds: int = 7200):
        self.apps = dict(apps)  # app id -> app secret
        self.tokens = TokenIssuer(token_lifetime_seconds)
        self.calls = CallLog()
        self.faults = Faults()
        self.media = MediaStore()
        self.auth_codes = AuthCodes()  # web authorization codes, by value
        self.pay = SandboxPay()  # WeChat Pay: the merchant, the keys, the transfer bills
        self.menus: dict[str, dict[str, Any]] = {}  # official account's app id -> the menu menu/create took
        self.risk_ranks = RiskRanks()  # what getuserriskrank answers, per openid
        self._message_ids = itertools.count(1_000_000_001)

    def authenticate(self, app_id: str | None, secret: str | None) -> str:
        """`app_id` when `secret` is its secret; WeChat's error otherwise."""
        if app_id not in self.apps:
            raise SandboxError(40013)
        if secret != self.apps[app_id]:
            raise SandboxError(40125)
        return app_id

    def next_message_id(self) -> int:
        return next(self._message_ids)
