"""A member's share poster as JPEG: the mini-program's own and the merchant's preview answer it alike; and a
stored poster background, which the merchant API and the console answer alike."""

from __future__ import annotations

from pydantic import Field

from distribution.errors import NotFound
from web.base import BaseHandler
from web.openapi import Reply
from web.paging import Query

MAX_TEMPLATE_ID = 32
POSTER_CACHE_CONTROL = "private, max-age=300"
# A background's picture never changes under its id: a new picture is a new background.
BACKGROUND_CACHE_CONTROL = "private, max-age=86400"
POSTER = Reply("The poster, 750x1334, drawn once and cached per template and version", media_types=("image/jpeg",))
# 403: the member may not be a promoter; 503: WeChat did not give the poster's code, or this kind of poster is
# not configured.
POSTER_ERRORS = (403, 503)


class PosterQuery(Query):
    template: str | None = Field(None, min_length=1, max_length=MAX_TEMPLATE_ID,
                                 description="a template id of the poster settings; default: their default_template")


class PosterWriter(BaseHandler):
    """Mixed into the handlers that answer a member's poster."""

    async def write_poster(self, member: dict) -> None:
        jpeg = await self.runtime.posters.jpeg(member, self.parse_query(PosterQuery).template)
        self.set_header("Content-Type", "image/jpeg")
        self.set_header("Cache-Control", POSTER_CACHE_CONTROL)
        self.finish(jpeg)


class BackgroundWriter(BaseHandler):
    """Mixed into the handlers that answer a stored poster background's picture."""

    async def write_background(self, background_id: str) -> None:
        background = await self.runtime.posters.background(background_id)
        if background is None:
            raise NotFound(f"no poster background {background_id}")
        self.set_header("Content-Type", background["content_type"])
        self.set_header("Cache-Control", BACKGROUND_CACHE_CONTROL)
        self.finish(bytes(background["data"]))
