"""Posters over HTTP for the merchant: the preview of any member's poster, and the background pictures.

The poster settings themselves (templates, keywords, code type) are read and
replaced through `GET|PUT /api/merchant/v1/settings/posters`.
"""

from __future__ import annotations

from handlers.merchant import MerchantHandler
from posters.backgrounds import MAX_BACKGROUND_BYTES
from web.base import PICTURE_TYPES
from web.models import PosterBackground
from web.openapi import Reply, operation
from web.posters import POSTER, POSTER_ERRORS, BackgroundWriter, PosterQuery, PosterWriter



class MemberPosterHandler(MerchantHandler, PosterWriter):
    @operation("A member's share poster (JPEG), as the member gets it", query=PosterQuery, responses={200: POSTER},
               errors=(404, *POSTER_ERRORS))
    async def get(self, member_id: str) -> None:
        await self.write_poster(await self.member_or_404(member_id))


class BackgroundsHandler(MerchantHandler):
    max_body_bytes = MAX_BACKGROUND_BYTES

    @operation("Upload a poster background: the picture itself as the body (not multipart)",
               description=f"A JPEG or PNG of at most {MAX_BACKGROUND_BYTES:,} bytes, 200-8000 px a side and at "
                           "most 40 megapixels. It is turned upright and shrunk to just cover the 750x1334 canvas. "
                           "Refer to its id as templates.<id>.background_id in the poster settings.",
               body_media_types=PICTURE_TYPES, responses={201: Reply("The stored background", PosterBackground)},
               errors=(400, 413, 415))
    async def post(self) -> None:
        data = self.picture_body()
        background = PosterBackground.from_document(await self.runtime.posters.add_background(data))
        await self.audit("poster.background_add", "poster_background", background.id,
                         after=background.model_dump(exclude={"id", "created_at"}))
        self.set_header("Location", f"{self.request.path}/{background.id}")
        self.write_model(background, status=201)


class BackgroundHandler(MerchantHandler, BackgroundWriter):
    @operation("A stored poster background, as prepared",
               responses={200: Reply("The picture", media_types=PICTURE_TYPES)}, errors=(404,))
    async def get(self, background_id: str) -> None:
        await self.write_background(background_id)
