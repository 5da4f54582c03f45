"""What can go wrong when talking to WeChat, as types callers can branch on.

Everything the client raises is a `WeChatError`, so one `except` covers a
failed call; the subclasses mark the cases a caller treats differently.
"""

from __future__ import annotations


class WeChatError(Exception):
    """WeChat answered with a non-zero errcode, or did not answer usably.

    `errcode` is None when there is no errcode to report: WeChat never
    answered, or answered with something that is not its JSON.
    """

    def __init__(self, errcode: int | None, errmsg: str, endpoint: str):
        super().__init__(f"{endpoint}: {errcode} {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg
        self.endpoint = endpoint


class WeChatUnavailable(WeChatError):
    """No usable answer: connection failed, HTTP error status, or a garbled body."""


class WeChatTimeout(WeChatUnavailable):
    """No answer within the client's timeout."""


class WeChatTokenRejected(WeChatError):
    """The access token was invalid, not the latest, or expired."""


class WeChatRateLimited(WeChatError):
    """A daily or per-minute quota is spent: back off instead of retrying now."""


class WeChatRefused(WeChatError):
    """The user refused this subscription message; retrying will not help."""


_ERROR_TYPES: dict[int, type[WeChatError]] = {
    40001: WeChatTokenRejected,
    40014: WeChatTokenRejected,
    42001: WeChatTokenRejected,
    45009: WeChatRateLimited,
    45011: WeChatRateLimited,
    43101: WeChatRefused,
}


def error_for(errcode: int, errmsg: str, endpoint: str) -> WeChatError:
    """The most specific error type WeChat's `errcode` maps to."""
    return _ERROR_TYPES.get(errcode, WeChatError)(errcode, errmsg, endpoint)
