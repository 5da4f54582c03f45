"""The merchant's API: bearer-token auth, and members."""

from __future__ import annotations

import hmac
import inspect
from typing import Annotated, Any

from pydantic import Field

from distribution.binding import PromoterStatus
from distribution.grades import MAX_GRADE_NAME_LENGTH
from distribution.rate_limits import Action
from distribution.records import Record, Text, matching
from services.audit import Actor
from services.members import MAX_NICKNAME_PREFIX, MemberNotFound
from services.runtime import Runtime
from web.base import ApiError, BaseHandler
from web.models import ListedMember, Member
from web.openapi import Reply, operation
from web.paging import Page, TimePageQuery, time_cursor

# Who the audit log says acted when the merchant API's token did: the token names no person.
MERCHANT_API_ACTOR = "merchant-api"


class MerchantHandler(BaseHandler):
    """Every merchant endpoint: `Authorization: Bearer $MERCHANT_API_TOKEN`.

    Each wrong Authorization counts against the address's `merchant_auth_failure` limit; past it, that address
    is answered 429 whatever it sends, the right token included, so that a guesser cannot tell a right guess
    from a wrong one. A request without Authorization guesses nothing and is not counted.
    """

    security = "merchantToken"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A plain `prepare` could not await this one's: the token would go unchecked.
        if not inspect.iscoroutinefunction(cls.prepare):
            raise TypeError(f"{cls.__name__}.prepare must be async and await MerchantHandler.prepare")

    async def prepare(self) -> None:
        super().prepare()
        authorization = self.request.headers.get("Authorization")
        scheme, _, token = (authorization or "").partition(" ")
        expected = self.runtime.settings.merchant_api_token.encode()
        if scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), expected):
            await self.runtime.limits.refuse_if_over(Action.MERCHANT_AUTH_FAILURE, ip=self.client_ip)
            return
        if authorization is not None:
            await self.runtime.limits.check(Action.MERCHANT_AUTH_FAILURE, ip=self.client_ip)
        raise ApiError(401, "unauthorized", "a valid merchant bearer token is required",
                       headers={"WWW-Authenticate": 'Bearer realm="merchant"'})

    @property
    def actor(self) -> Actor:
        return Actor(kind="api", name=MERCHANT_API_ACTOR, ip=self.client_ip)

    async def member_or_404(self, member_id: str) -> dict:
        member = await self.runtime.members.get(member_id)
        if member is None:
            raise MemberNotFound(f"no member {member_id}")
        return member


PhoneTail = Annotated[str, matching(r"^[0-9]{4}$", "must be the last 4 digits of a phone number")]


class MemberSearch(TimePageQuery):
    """Search by one key (q, nickname or phone_tail) or none, with filters; see `services.members`."""

    q: str | None = Field(None, max_length=128, description="a member id, an official-account or mini-program "
                                                           "openid (letters, digits, '-' and '_'), or else the "
                                                           "start of a nickname")
    nickname: str | None = Field(None, max_length=MAX_NICKNAME_PREFIX, description="the start of a nickname")
    phone_tail: PhoneTail | None = Field(None, description="the last 4 digits of the member's phone")
    grade: str | None = Field(None, max_length=MAX_GRADE_NAME_LENGTH, description="only members of this grade")
    frozen: bool | None = Field(None, description="only frozen (true) or unfrozen (false) members")
    promoter_status: PromoterStatus | None = Field(None, description="only members in this promoter status")
    openid: str | None = Field(None, min_length=1, max_length=128, json_schema_extra={"deprecated": True},
                               description="kept for existing callers: the member of this official-account openid, "
                                           "answered alone (not as a page), or 404")

    def criteria(self) -> dict[str, Any]:
        return self.model_dump(include={"q", "nickname", "phone_tail", "grade", "frozen", "promoter_status"})


async def member_search_page(runtime: Runtime, query: MemberSearch) -> Page[ListedMember]:
    """The page of members `query` finds, as both the API and the console show it."""
    listed = await runtime.members.search(query.limit, query.cursor, **query.criteria())
    return Page[ListedMember].of(listed, query.limit, lambda each: ListedMember.from_listed(each, runtime.sealer),
                                 lambda each: time_cursor("created_at")(each.member))


class MemberSearchHandler(MerchantHandler):
    @operation("Search members, newest first: by id, openid, nickname or phone tail; by grade, frozen or status",
               description="One key at most: `q` (a member id or openid finds that member, anything else the "
                           "members whose nickname starts with it), `nickname` or `phone_tail`. Without a key, "
                           "every member, or those of one filter (`grade`, `frozen` or `promoter_status`); beside "
                           "`phone_tail` any filters. Other combinations are refused (400 `unindexed_search`): "
                           "each list is read through an index of its own, about a page at a time.",
               query=MemberSearch, responses={200: Reply("A page of members", Page[ListedMember])}, errors=(404,))
    async def get(self) -> None:
        query = self.parse_query(MemberSearch)
        if query.openid is not None:
            member = await self.runtime.members.by_oa_openid(query.openid)
            if member is None:
                raise MemberNotFound(f"no member with openid {query.openid}")
            self.write_model(Member.from_document(member))
            return
        self.write_model(await member_search_page(self.runtime, query))


class MemberHandler(MerchantHandler):
    @operation("A member by id", responses={200: Reply("The member", Member)}, errors=(404,))
    async def get(self, member_id: str) -> None:
        self.write_model(Member.from_document(await self.member_or_404(member_id)))


class ReviewNote(Record):
    """Why the merchant decided as they did; the promoter is told."""

    reason: Text | None = Field(None, max_length=500, description="shown to the promoter")

