"""A member's share poster as JPEG: the mini-program's own and the merchant's preview answer it alike."""

from __future__ import annotations

from pydantic import Field

from web.base import BaseHandler
from web.openapi import Reply
from web.paging import Query

MAX_TEMPLATE_ID = 32
POSTER_CACHE_CONTROL = "private, max-age=300"
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
