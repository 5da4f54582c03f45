from __future__ import annotations

import string
from typing import Any

from ..errors import WeChatUnavailable
from .base import ApiGroup, template_data, without_none

SCENE_MAX_LENGTH = 32
SCENE_CHARACTERS = frozenset(string.ascii_letters + string.digits + "!#$&'()*+,/:;=?@-._~")


def is_valid_scene(scene: str) -> bool:
    """Whether WeChat accepts `scene` in a mini-program code (getwxacodeunlimit)."""
    return 0 < len(scene) <= SCENE_MAX_LENGTH and set(scene) <= SCENE_CHARACTERS


class MiniAppApi(ApiGroup):
    """Endpoints of the mini-program: call them on the mini-program's client."""

    async def code_to_session(self, js_code: str) -> dict[str, Any]:
        """{openid, session_key, unionid?} for the code of `wx.login`; needs no access token."""
        return await self._redeem_code("sns/jscode2session", "js_code", js_code)

    async def get_unlimited_code(self, scene: str, page: str, width: int = 430, check_path: bool = False) -> bytes:
        """The image of a mini-program code that opens `page` with `scene`."""
        if not is_valid_scene(scene):
            raise ValueError(
                f"scene must be 1-{SCENE_MAX_LENGTH} letters, digits or !#$&'()*+,/:;=?@-._~, got {scene!r}"
            )
        path = "wxa/getwxacodeunlimit"
        answer = await self._client.call(
            "POST", path, json={"scene": scene, "page": page, "width": width, "check_path": check_path}
        )
        if isinstance(answer, dict):
            raise WeChatUnavailable(None, "JSON answer where an image was expected", path)
        return answer

    async def send_subscribe(
        self, openid: str, template_id: str, data: dict[str, str], page: str | None = None
    ) -> dict[str, Any]:
        """A subscription message the user agreed to in the mini-program; `page` opens on tap."""
        body = without_none(touser=openid, template_id=template_id, data=template_data(data), page=page)
        return await self._call_for_json("POST", "cgi-bin/message/subscribe/send", json=body)
