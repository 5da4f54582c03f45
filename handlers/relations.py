"""Merchant API over relations: teams, the bind log, admin re-binds, freezing."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from distribution.binding import BindSource
from distribution.errors import Refused
from distribution.records import Record, Text, matching
from handlers.merchant import MerchantHandler
from web.models import BindAttempt, Member
from web.openapi import Reply, operation
from web.paging import Page, PageQuery, TimePageQuery, key_cursor, time_cursor

MemberId = Annotated[str, StringConstraints(strict=True), matching(r"^[0-9a-f]{24}$", "must be a member id")]


class TeamQuery(TimePageQuery):
    depth: Literal["1", "all"] = Field("1", description="1: direct members; all: everyone below")


class TeamHandler(MerchantHandler):
    @operation("A member's team, newest first: direct members (depth=1) or everyone below (depth=all)",
               query=TeamQuery, responses={200: Reply("A page of members", Page[Member])}, errors=(404,))
    async def get(self, member_id: str) -> None:
        member = await self.member_or_404(member_id)
        query = self.parse_query(TeamQuery)
        members = await self.runtime.members.team_page(member, 1 if query.depth == "1" else None, query.limit,
                                                       query.cursor)
        self.write_model(Page[Member].of(members, query.limit, Member.from_document, time_cursor("bound_at")))


class BindLogHandler(MerchantHandler):
    @operation("Every bind attempt of a member, bound or refused, newest first", query=PageQuery,
               responses={200: Reply("A page of bind attempts", Page[BindAttempt])}, errors=(404,))
    async def get(self, member_id: str) -> None:
        member = await self.member_or_404(member_id)
        query = self.parse_query(PageQuery)
        entries = await self.runtime.relations.log_page(member, query.limit, query.cursor)
        self.write_model(Page[BindAttempt].of(entries, query.limit, BindAttempt.from_document, key_cursor()))


class UplineChange(Record):
    """A re-bind by hand: every binding rule applies but the bind mode."""

    upline_id: MemberId = Field(description="the new upline")
    reason: Text = Field(max_length=500, description="why: re-binds by hand are audited")


class UplineHandler(MerchantHandler):
    @operation("Re-bind a member by hand (audited): every rule applies but the bind mode", body=UplineChange,
               responses={200: Reply("Bound; the member as it is now", Member)}, errors=(404, 409))
    async def post(self, member_id: str) -> None:
        member = await self.member_or_404(member_id)
        change = self.parse_body(UplineChange)
        await self.member_or_404(change.upline_id)
        outcome = await self.runtime.relations.bind(member, change.upline_id, BindSource.ADMIN,
                                                    datetime.now(timezone.utc), note=change.reason)
        if not outcome.bound:
            raise Refused(f"not bound: {outcome.reason}", code=outcome.reason or Refused.code)
        self.write_model(Member.from_document(await self.member_or_404(member_id)))


class FreezeHandler(MerchantHandler):
    async def set_frozen(self, member_id: str, frozen: bool) -> None:
        self.write_model(Member.from_document(await self.runtime.relations.set_frozen(member_id, frozen)))

    @operation("Freeze a member: a frozen member is never an upline nor bound",
               responses={200: Reply("The member as it is now", Member)}, errors=(404,))
    async def post(self, member_id: str) -> None:
        await self.set_frozen(member_id, True)


class UnfreezeHandler(FreezeHandler):
    @operation("Unfreeze a member", responses={200: Reply("The member as it is now", Member)}, errors=(404,))
    async def post(self, member_id: str) -> None:
        await self.set_frozen(member_id, False)
