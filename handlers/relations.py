"""Merchant API over relations: teams, the bind log, and what the merchant does to a member by hand (re-bind,
freeze, grade), each audited; the console's promoter pages do the same through the same functions."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from distribution.binding import BindSource
from distribution.errors import Refused
from distribution.grades import GradeName
from distribution.records import Record, Text, matching
from handlers.merchant import MerchantHandler
from services.members import MemberNotFound
from services.runtime import Runtime
from web.base import BaseHandler
from web.models import BindAttempt, Member
from web.openapi import Reply, operation
from web.paging import Page, PageQuery, TimePageQuery, key_cursor, time_cursor

MemberId = Annotated[str, StringConstraints(strict=True), matching(r"^[0-9a-f]{24}$", "must be a member id")]


class TeamQuery(TimePageQuery):
    depth: Literal["1", "all"] = Field("1", description="1: direct members; all: everyone below (relation=upline)")
    relation: Literal["upline", "owned"] = Field(
        "upline", description="upline: the members below by who invited whom; owned: the members whose team owner "
                              "this member is, in the chain-move mode (depth does not apply)")


async def team_page(runtime: Runtime, member: dict, query: TeamQuery) -> Page[Member]:
    if query.relation == "owned":
        members = await runtime.members.owned_page(member, query.limit, query.cursor)
    else:
        members = await runtime.members.team_page(member, 1 if query.depth == "1" else None, query.limit,
                                                  query.cursor)
    return Page[Member].of(members, query.limit, Member.from_document, time_cursor("bound_at"))


async def bind_log_page(runtime: Runtime, member: dict, query: PageQuery) -> Page[BindAttempt]:
    entries = await runtime.relations.log_page(member, query.limit, query.cursor)
    return Page[BindAttempt].of(entries, query.limit, BindAttempt.from_document, key_cursor())


class TeamHandler(MerchantHandler):
    @operation("A member's team, newest first: direct members (depth=1) or everyone below (depth=all); with "
               "relation=owned, the members it owns as a team owner in the chain-move mode",
               query=TeamQuery, responses={200: Reply("A page of members", Page[Member])}, errors=(404,))
    async def get(self, member_id: str) -> None:
        member = await self.member_or_404(member_id)
        self.write_model(await team_page(self.runtime, member, self.parse_query(TeamQuery)))


class BindLogHandler(MerchantHandler):
    @operation("Every bind attempt of a member, bound or refused, newest first", query=PageQuery,
               responses={200: Reply("A page of bind attempts", Page[BindAttempt])}, errors=(404,))
    async def get(self, member_id: str) -> None:
        member = await self.member_or_404(member_id)
        self.write_model(await bind_log_page(self.runtime, member, self.parse_query(PageQuery)))


class UplineChange(Record):
    """A re-bind by hand: every binding rule applies but the bind mode."""

    upline_id: MemberId = Field(description="the new upline")
    reason: Text = Field(max_length=500, description="why: re-binds by hand are audited")


async def rebind(handler: BaseHandler, member: dict, upline_id: str, reason: str) -> dict:
    """Re-bind `member` under `upline_id` by hand and audit it; returns the member as it is now. MemberNotFound
    for an upline that does not exist, Refused (coded with the rule's reason) when a rule says no."""
    members = handler.runtime.members
    if await members.get(upline_id) is None:
        raise MemberNotFound(f"no member {upline_id}", field="upline_id")
    outcome = await handler.runtime.relations.bind(member, upline_id, BindSource.ADMIN, datetime.now(timezone.utc),
                                                   note=reason)
    if not outcome.bound:
        raise Refused(f"not bound: {outcome.reason}", code=outcome.reason or Refused.code, field="upline_id")
    bound = await members.get(member["_id"])
    await handler.audit("member.upline", "member", member["_id"], {"upline_id": member.get("upline_id")},
                        {"upline_id": bound.get("upline_id")}, reason)
    return bound


async def set_frozen(handler: BaseHandler, member_id: str, frozen: bool, reason: str | None = None) -> dict:
    """Freeze or unfreeze the member and audit it; returns it as it is now (MemberNotFound when there is none)."""
    before = await handler.runtime.members.get(member_id)
    if before is None:
        raise MemberNotFound(f"no member {member_id}")
    member = await handler.runtime.relations.set_frozen(member_id, frozen)
    if frozen:
        await handler.runtime.sessions.end_all(member_id)
        await handler.runtime.withdrawals.cancel_waiting_bills(member_id)
    await handler.audit("member.freeze" if frozen else "member.unfreeze", "member", member_id,
                        {"frozen": before.get("frozen", False)}, {"frozen": member.get("frozen", False)}, reason)
    return member


async def set_grade(handler: BaseHandler, member_id: str, grade: str | None, reason: str) -> dict:
    """Give the member `grade` by hand (None: none) and audit it; returns the member as it is now."""
    change = await handler.runtime.grades.set_grade(member_id, grade, reason, handler.actor.name)
    await handler.audit("member.grade", "member", member_id, {"grade": change["from_grade"]},
                        {"grade": change["to_grade"]}, reason)
    return await handler.runtime.members.get(member_id)


class UplineHandler(MerchantHandler):
    @operation("Re-bind a member by hand (audited): every rule applies but the bind mode", body=UplineChange,
               responses={200: Reply("Bound; the member as it is now", Member)}, errors=(404, 409))
    async def post(self, member_id: str) -> None:
        member = await self.member_or_404(member_id)
        change = self.parse_body(UplineChange)
        self.write_model(Member.from_document(await rebind(self, member, change.upline_id, change.reason)))


class FreezeHandler(MerchantHandler):
    @operation("Freeze a member: never an upline nor bound, their commissions held, their withdrawals refused, "
               "their transfers still waiting for their acceptance cancelled and their sessions ended",
               responses={200: Reply("The member as it is now", Member)}, errors=(404,))
    async def post(self, member_id: str) -> None:
        self.write_model(Member.from_document(await set_frozen(self, member_id, True)))


class UnfreezeHandler(MerchantHandler):
    @operation("Unfreeze a member", responses={200: Reply("The member as it is now", Member)}, errors=(404,))
    async def post(self, member_id: str) -> None:
        self.write_model(Member.from_document(await set_frozen(self, member_id, False)))


class GradeChange(Record):
    """A grade set by hand (audited): up or down, to any grade the settings name, or to none."""

    grade: GradeName | None = Field(description="one of the grade settings' names; null: no grade")
    reason: Text = Field(max_length=500, description="why: grades set by hand are audited")


class GradeHandler(MerchantHandler):
    @operation("Set a member's grade by hand (audited)",
               description="Evaluation only ever raises grades: a promoter set below a grade whose conditions they "
                           "meet is raised to it again at their next evaluation (a settlement or a new direct "
                           "member). 409 `same_grade` when they hold it already.",
               body=GradeChange, responses={200: Reply("The member as it is now", Member)}, errors=(404, 409))
    async def post(self, member_id: str) -> None:
        change = self.parse_body(GradeChange)
        self.write_model(Member.from_document(await set_grade(self, member_id, change.grade, change.reason)))
