"""GET /api/v1/poster: my own share poster."""

from __future__ import annotations

from distribution.agreements import AgreementAct
from distribution.rate_limits import Action
from miniapp_api.auth import MiniappHandler
from web.openapi import operation
from web.posters import POSTER, POSTER_ERRORS, PosterQuery, PosterWriter


class MyPosterHandler(MiniappHandler, PosterWriter):
    @operation("My share poster (JPEG), drawn once and cached per template and version", query=PosterQuery,
               responses={200: POSTER}, errors=(*POSTER_ERRORS, 429))
    async def get(self) -> None:
        await self.runtime.limits.check(Action.POSTER_DRAW, member=self.member["_id"])
        await self.runtime.agreements.require(self.member, AgreementAct.SHARE)
        await self.write_poster(self.member)
