"""Temporary media uploaded to the sandbox."""

from __future__ import annotations

import secrets
from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True)
class UploadedMedia:
    kind: str
    filename: str
    content: bytes


class MediaStore:
    """The most recent uploads by media_id. Older ones are forgotten, as WeChat
    forgets temporary media after three days, so a long demo run stays small."""

    def __init__(self, limit: int = 256):
        self._limit = limit
        self._media: OrderedDict[str, UploadedMedia] = OrderedDict()

    def add(self, media: UploadedMedia) -> str:
        media_id = secrets.token_urlsafe(48)
        self._media[media_id] = media
        if len(self._media) > self._limit:
            self._media.popitem(last=False)
        return media_id

    def get(self, media_id: str) -> UploadedMedia | None:
        return self._media.get(media_id)
