from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from .base import ApiGroup

AUTHORIZE_PATH = "connect/oauth2/authorize"
SNSAPI_BASE = "snsapi_base"  # silent: WeChat tells the page who the visitor is, with no consent screen
# Codes the visitor's browser brought that WeChat will not exchange: invalid, already used, expired.
# Only opening the link again gets a fresh one.
SPENT_CODE_ERRCODES = frozenset({40029, 40163, 42003})


class WebAuthApi(ApiGroup):
    """Web authorization (网页授权): who opened one of the official account's H5 pages inside WeChat."""

    def authorize_url(self, open_base: str, redirect_uri: str, state: str, scope: str = SNSAPI_BASE) -> str:
        """WeChat's authorize page, which sends the browser back to `redirect_uri` with `code` and `state`.

        WeChat wants the parameters in this order and the `#wechat_redirect` ending.
        """
        query = urlencode(
            {"appid": self._client.app_id, "redirect_uri": redirect_uri, "response_type": "code", "scope": scope,
             "state": state},
            quote_via=quote,
        )
        return f"{open_base.rstrip('/')}/{AUTHORIZE_PATH}?{query}#wechat_redirect"

    async def code_to_access_token(self, code: str) -> dict[str, Any]:
        """{access_token, expires_in, refresh_token, openid, scope, unionid?} for the code the authorize page
        gave; the access token is the visitor's, not the account's, and none is needed to ask."""
        return await self._redeem_code("sns/oauth2/access_token", "code", code)
