from __future__ import annotations

from typing import Any

from .base import ApiGroup

SCENE_STR_MAX_LENGTH = 64


class QrCodeApi(ApiGroup):
    """The official account's parametric QR codes: scanning one tells us its scene."""

    async def create(self, scene_str: str, expire_seconds: int | None = None, permanent: bool = False) -> dict[str, Any]:
        """{ticket, url, expire_seconds}; `url` is what the QR code encodes.

        A temporary code lives `expire_seconds` (WeChat's default of 60 when
        None, at most 30 days); a permanent one has no expire_seconds and
        counts against the account's limited supply.
        """
        if not 1 <= len(scene_str) <= SCENE_STR_MAX_LENGTH:
            raise ValueError(f"scene_str must be 1-{SCENE_STR_MAX_LENGTH} characters, got {len(scene_str)}")
        if permanent and expire_seconds is not None:
            raise ValueError("a permanent QR code does not expire")
        body: dict[str, Any] = {
            "action_name": "QR_LIMIT_STR_SCENE" if permanent else "QR_STR_SCENE",
            "action_info": {"scene": {"scene_str": scene_str}},
        }
        if expire_seconds is not None:
            body["expire_seconds"] = expire_seconds
        return await self._call_for_json("POST", "cgi-bin/qrcode/create", json=body)
