"""The two pages of an H5 share link, opened by the visitor's browser inside WeChat.

`GET /s/<id>?sig=` sends a good link on to WeChat's web authorization;
`GET /s/<id>/bind?code=&state=` is where WeChat sends the browser back, and
binds the visitor to the promoter. They are pages, not the JSON API: every
answer is a small HTML page, and they stay out of /openapi.json.
"""

from __future__ import annotations

import html
import logging
from datetime import datetime, timezone
from typing import Any

from distribution.errors import TooMany
from distribution.share_links import TEMPLATE_PARAMETER
from services.members import promoter_name
from services.relations import BindOutcome
from services.share_links import ShareLinkRefused
from web.base import BaseHandler, error_status
from wechat import WeChatError

log = logging.getLogger(__name__)

WECHAT_DOWN = "微信暂时没有响应，请稍后重新打开分享链接。"
BROKEN_PAGE = "页面出错了，请稍后再试。"
# A refused bind is not the visitor's problem: they see a welcome; the reason is in the bind log.
WELCOME = "欢迎光临！"
TOO_MANY = "访问过于频繁，请稍后再打开分享链接。"

_PAGE = """<!doctype html>
<html lang="zh-CN">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{text}</title></head>
<body><p>{text}</p></body>
</html>
"""


def bind_page_text(outcome: BindOutcome) -> str:
    if outcome.bound:
        return f"绑定成功，你的推广人：{promoter_name(outcome.upline)}"
    return WELCOME


class SharePageHandler(BaseHandler):
    def write_page(self, text: str, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        # Each answer depends on who visits and when: never one to keep.
        self.set_header("Cache-Control", "no-store")
        self.finish(_PAGE.format(text=html.escape(text)))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """The link's refusals (their message is the visitor's) and WeChat's silence, with the API's statuses."""
        error = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(error, ShareLinkRefused):
            self.write_page(error.message, error_status(error))
        elif isinstance(error, TooMany):
            self.set_header("Retry-After", str(error.retry_after))
            self.write_page(TOO_MANY, error_status(error))
        elif isinstance(error, WeChatError):
            log.warning("share link %s: WeChat did not answer: %s", self.request.path, error)
            self.write_page(WECHAT_DOWN, error_status(error))
        else:
            self.write_page(BROKEN_PAGE if status_code >= 500 else self._reason, status_code)


class ShareLinkHandler(SharePageHandler):
    async def get(self, member_id: str) -> None:
        self.redirect(await self.runtime.share_links.authorize_url(
            member_id, self.get_query_argument("sig", None), self.get_query_argument(TEMPLATE_PARAMETER, None),
            datetime.now(timezone.utc)))


class ShareBindHandler(SharePageHandler):
    async def get(self, member_id: str) -> None:
        outcome = await self.runtime.share_links.bind_visitor(
            member_id, self.get_query_argument("state", None), self.get_query_argument("code", None),
            datetime.now(timezone.utc), self.get_query_argument(TEMPLATE_PARAMETER, None), self.client_ip)
        self.write_page(bind_page_text(outcome))
