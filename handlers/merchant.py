"""The merchant's API: bearer-token auth, and members."""

from __future__ import annotations

import hmac

from pydantic import Field

from distribution.records import Record, Text
from services.members import MemberNotFound
from web.base import ApiError, BaseHandler
from web.models import Member
from web.openapi import Reply, operation
from web.paging import Query


class MerchantHandler(BaseHandler):
    """Every merchant endpoint: `Authorization: Bearer $MERCHANT_API_TOKEN`."""

    security = "merchantToken"

    def prepare(self) -> None:
        super().prepare()
        scheme, _, token = self.request.headers.get("Authorization", "").partition(" ")
        expected = self.runtime.settings.merchant_api_token.encode()
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected):
            self.set_header("WWW-Authenticate", 'Bearer realm="merchant"')
            raise ApiError(401, "unauthorized", "a valid merchant bearer token is required")

    async def member_or_404(self, member_id: str) -> dict:
        member = await self.runtime.members.get(member_id)
        if member is None:
            raise MemberNotFound(f"no member {member_id}")
        return member


class MemberLookup(Query):
    openid: str = Field(min_length=1, max_length=128, description="the member's official-account openid")


class MemberLookupHandler(MerchantHandler):
    @operation("Find a member by official-account openid", query=MemberLookup,
               responses={200: Reply("The member", Member)}, errors=(404,))
    async def get(self) -> None:
        openid = self.parse_query(MemberLookup).openid
        member = await self.runtime.members.by_oa_openid(openid)
        if member is None:
            raise MemberNotFound(f"no member with openid {openid}")
        self.write_model(Member.from_document(member))


class MemberHandler(MerchantHandler):
    @operation("A member by id", responses={200: Reply("The member", Member)}, errors=(404,))
    async def get(self, member_id: str) -> None:
        self.write_model(Member.from_document(await self.member_or_404(member_id)))


class ReviewNote(Record):
    """Why the merchant decided as they did; the promoter is told."""

    reason: Text | None = Field(None, max_length=500, description="shown to the promoter")

