from __future__ import annotations

import mimetypes
from typing import Any

from .base import ApiGroup

MEDIA_KINDS = ("image", "voice", "video", "thumb")


class MediaApi(ApiGroup):
    """Temporary media, which WeChat keeps three days."""

    async def upload(self, kind: str, filename: str, data: bytes) -> dict[str, Any]:
        """{type, media_id, created_at}: `media_id` is what messages refer to."""
        if kind not in MEDIA_KINDS:
            raise ValueError(f"media kind must be one of {MEDIA_KINDS}, got {kind!r}")
        content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        return await self._call_for_json(
            "POST",
            "cgi-bin/media/upload",
            params={"type": kind},
            files={"media": (filename, data, content_type)},
        )
