"""WeChat's error answers, with the errmsg WeChat sends for each errcode."""

from __future__ import annotations

from typing import Any

ERRMSGS = {
    -1: "system error",
    10003: "redirect_uri domain mismatch",
    10005: "the official account has no permission for this scope",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40004: "invalid media type",
    40007: "invalid media_id",
    40008: "invalid message type",
    40013: "invalid appid",
    40014: "invalid access_token",
    40016: "invalid button size",
    40017: "invalid button type",
    40018: "invalid button name size",
    40019: "invalid button key size",
    40020: "invalid button url size",
    40022: "invalid sub_menu level",
    40023: "invalid sub button size",
    40024: "invalid sub button type",
    40025: "invalid sub button name size",
    40026: "invalid sub button key size",
    40027: "invalid sub button url size",
    40029: "invalid code",
    40037: "invalid template_id",
    40125: "invalid appsecret",
    40129: "invalid scene",
    40163: "code been used",
    40165: "invalid weapp pagepath",
    40166: "invalid weapp appid",
    40169: "invalid length for scene, or the data is not json string",
    41005: "media data missing",
    41030: "invalid page",
    42001: "access_token expired",
    43001: "require GET method",
    43002: "require POST method",
    43101: "user refuse to accept the msg",
    43104: "appid does not match openid",
    44002: "empty post data",
    44004: "empty content",
    45009: "reach max api daily quota limit",
    45011: "api minute-quota reach limit, must slower, retry next minute",
    46003: "menu no exist",
    47001: "data format error",
    85005: "appid not bind weapp",
}


class SandboxError(Exception):
    """Answer the call with WeChat's error `errcode` (HTTP 200, as WeChat does)."""

    def __init__(self, errcode: int):
        super().__init__(errcode)
        self.errcode = errcode


def error_answer(errcode: int) -> dict[str, Any]:
    return {"errcode": errcode, "errmsg": ERRMSGS.get(errcode, "sandbox injected error")}
