"""The merchant's API: bearer-token auth, and members."""

from __future__ import annotations

import hmac

from web.base import ApiError, BaseHandler
from web.openapi import error_responses, json_response, ref
from services.members import member_json

MERCHANT_SECURITY = [{"merchantToken": []}]


class MerchantHandler(BaseHandler):
    """Every merchant endpoint: `Authorization: Bearer $MERCHANT_API_TOKEN`."""

    def prepare(self) -> None:
        scheme, _, token = self.request.headers.get("Authorization", "").partition(" ")
        expected = self.runtime.settings.merchant_api_token.encode()
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected):
            self.set_header("WWW-Authenticate", 'Bearer realm="merchant"')
            raise ApiError(401, "unauthorized", "a valid merchant bearer token is required")

    async def member_or_404(self, member_id: str) -> dict:
        member = await self.runtime.members.get(member_id)
        if member is None:
            raise ApiError(404, "member_not_found", f"no member {member_id}")
        return member


class MemberLookupHandler(MerchantHandler):
    openapi = {
        "get": {
            "summary": "Find a member by official-account openid",
            "security": MERCHANT_SECURITY,
            "parameters": [{"name": "openid", "in": "query", "required": True, "schema": {"type": "string", "minLength": 1}}],
            "responses": {"200": json_response("The member", ref("Member")), **error_responses(400, 401, 404)},
        }
    }

    async def get(self) -> None:
        openid = self.get_query_argument("openid", "").strip()
        if not openid:
            raise ApiError(400, "invalid", "query parameter openid is required", field="openid")
        member = await self.runtime.members.by_oa_openid(openid)
        if member is None:
            raise ApiError(404, "member_not_found", f"no member with openid {openid}")
        self.write_json(member_json(member))


class MemberHandler(MerchantHandler):
    openapi = {
        "get": {
            "summary": "A member by id",
            "security": MERCHANT_SECURITY,
            "responses": {"200": json_response("The member", ref("Member")), **error_responses(401, 404)},
        }
    }

    async def get(self, member_id: str) -> None:
        self.write_json(member_json(await self.member_or_404(member_id)))
