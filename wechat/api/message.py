from __future__ import annotations

from typing import Any

from .base import ApiGroup, template_data, without_none


class MessageApi(ApiGroup):
    """Messages the official account sends to its followers.

    `data` of template and subscription messages maps each keyword of the
    template to its text. `miniprogram` is {"appid": ..., "pagepath": ...}.
    """

    async def send_custom(self, openid: str, msgtype: str, content: dict[str, Any]) -> dict[str, Any]:
        """A customer-service message: allowed within 48 hours of the user's last message."""
        return await self._call_for_json(
            "POST",
            "cgi-bin/message/custom/send",
            json={"touser": openid, "msgtype": msgtype, msgtype: content},
        )

    async def send_text(self, openid: str, text: str) -> dict[str, Any]:
        return await self.send_custom(openid, "text", {"content": text})

    async def send_image(self, openid: str, media_id: str) -> dict[str, Any]:
        return await self.send_custom(openid, "image", {"media_id": media_id})

    async def send_template(
        self,
        openid: str,
        template_id: str,
        data: dict[str, str],
        url: str | None = None,
        miniprogram: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """{errcode, errmsg, msgid}; the follower must still follow the account."""
        body = without_none(
            touser=openid, template_id=template_id, data=template_data(data), url=url, miniprogram=miniprogram
        )
        return await self._call_for_json("POST", "cgi-bin/message/template/send", json=body)

    async def send_subscription(
        self,
        openid: str,
        template_id: str,
        data: dict[str, str],
        page: str | None = None,
        miniprogram: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """A subscription message the user agreed to; `page` is a web page URL."""
        body = without_none(
            touser=openid, template_id=template_id, data=template_data(data), page=page, miniprogram=miniprogram
        )
        return await self._call_for_json("POST", "cgi-bin/message/subscribe/bizsend", json=body)
