"""Codes of web authorization (网页授权): issued by the authorize page, exchanged once."""

from __future__ import annotations

import secrets
from collections import OrderedDict
from dataclasses import dataclass

from .errors import SandboxError


@dataclass
class IssuedCode:
    app_id: str
    user: str  # the sandbox user who "opened" the page
    scope: str
    used: bool = False


class AuthCodes:
    """The most recent codes by value. Older ones are forgotten, and then unknown as a made-up code
    is, so a long demo run stays small; used ones are kept to answer a second exchange as WeChat does."""

    def __init__(self, limit: int = 10_000):
        self._limit = limit
        self._codes: OrderedDict[str, IssuedCode] = OrderedDict()

    def issue(self, app_id: str, user: str, scope: str) -> str:
        code = secrets.token_urlsafe(24)
        self._codes[code] = IssuedCode(app_id, user, scope)
        if len(self._codes) > self._limit:
            self._codes.popitem(last=False)
        return code

    def redeem(self, app_id: str, code: str | None) -> IssuedCode:
        """The code's grant, once: 40029 for a code this app was never given, 40163 for one already used."""
        issued = self._codes.get(code) if code else None
        if issued is None or issued.app_id != app_id:
            raise SandboxError(40029)
        if issued.used:
            raise SandboxError(40163)
        issued.used = True
        return issued
