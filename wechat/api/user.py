from __future__ import annotations

from typing import Any

from .base import ApiGroup


class UserApi(ApiGroup):
    """Followers of the official account."""

    async def info(self, openid: str, lang: str = "zh_CN") -> dict[str, Any]:
        """{subscribe, openid, unionid?, subscribe_time, subscribe_scene, qr_scene_str, ...}.

        WeChat no longer returns nickname or avatar here.
        """
        return await self._call_for_json("GET", "cgi-bin/user/info", params={"openid": openid, "lang": lang})
