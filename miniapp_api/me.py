"""GET|PATCH /api/v1/me and GET /api/v1/team: a member's own data, nobody else's."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from distribution.rate_limits import Action
from miniapp_api.auth import MiniappHandler
from miniapp_api.requests import ProfileChange
from web.models import Me, Teammate
from web.openapi import Reply, operation
from web.paging import Page, TimePageQuery, time_cursor

ME = Reply("Me", Me)


class MeHandler(MiniappHandler):
    async def write_me(self) -> None:
        upline_id = self.member.get("upline_id")
        upline = await self.runtime.members.get(upline_id) if upline_id else None
        balances = await self.runtime.ledger.balances(self.member["_id"])
        self.write_model(Me.from_document(self.member, upline, balances, self.runtime.sealer))

    @operation("My profile, upline, balances and counters", responses={200: ME})
    async def get(self) -> None:
        await self.write_me()

    @operation("Change my nickname, avatar or phone", body=ProfileChange, responses={200: ME}, errors=(429,))
    async def patch(self) -> None:
        change = self.parse_body(ProfileChange)
        await self.runtime.limits.check(Action.PROFILE_CHANGE, member=self.member["_id"])
        if change.avatar_url is not None:
            self.runtime.posters.check_avatar_url(change.avatar_url)
        self.member = await self.runtime.identity.change_profile(self.member, change.nickname, change.avatar_url,
                                                                 change.phone)
        await self.write_me()


class TeamQuery(TimePageQuery):
    depth: Literal["1", "2"] = Field("1", description="1: my direct members; 2: theirs")


class MyTeamHandler(MiniappHandler):
    @operation("My team, newest first: direct members (depth=1) or theirs (depth=2); names masked",
               query=TeamQuery, responses={200: Reply("A page of teammates", Page[Teammate])})
    async def get(self) -> None:
        query = self.parse_query(TeamQuery)
        members = await self.runtime.members.teammates(self.member, int(query.depth), query.limit, query.cursor)
        self.write_model(Page[Teammate].of(members, query.limit, Teammate.from_document, time_cursor("bound_at")))
