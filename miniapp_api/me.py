"""GET|PATCH /api/v1/me and GET /api/v1/team: a member's own data, nobody else's."""

from __future__ import annotations

from web.base import ApiError
from web.openapi import error_responses, json_response, ref
from web.paging import CURSOR_PARAMETER, LIMIT_PARAMETER, Paging, page_schema
from miniapp_api.auth import MINIAPP_SECURITY, MiniappHandler
from miniapp_api.requests import ProfileChange
from miniapp_api.views import me_view, teammate_view

PROFILE_CHANGE = {
    "type": "object", "additionalProperties": False, "minProperties": 1,
    "properties": {"nickname": {"type": ["string", "null"], "maxLength": 32},
                   "avatar_url": {"type": ["string", "null"], "maxLength": 512},
                   "phone": {"type": ["string", "null"], "maxLength": 16, "description": "stored encrypted, shown masked"}},
}


class MeHandler(MiniappHandler):
    openapi = {
        "get": {"summary": "My profile, upline, balances and counters", "security": MINIAPP_SECURITY,
                "responses": {"200": json_response("Me", ref("Me")), **error_responses(401)}},
        "patch": {"summary": "Change my nickname, avatar or phone", "security": MINIAPP_SECURITY,
                  "requestBody": {"required": True, "content": {"application/json": {"schema": PROFILE_CHANGE}}},
                  "responses": {"200": json_response("Me", ref("Me")), **error_responses(400, 401)}},
    }

    async def _show(self) -> None:
        upline_id = self.member.get("upline_id")
        upline = await self.runtime.members.get(upline_id) if upline_id else None
        balances = await self.runtime.ledger.balances(self.member["_id"])
        self.write_json(me_view(self.member, upline, balances, self.runtime.sealer))

    async def get(self) -> None:
        await self._show()

    async def patch(self) -> None:
        change = self.parse_body(ProfileChange)
        fields = {name: value for name, value in vars(change).items() if value is not None and name != "phone"}
        if change.phone:
            fields["phone_sealed"] = self.runtime.sealer.seal(change.phone)
        if not fields:
            raise ApiError(400, "invalid", "nothing to change: give nickname, avatar_url or phone")
        await self.runtime.members.store.update_fields(self.member["_id"], fields)
        self.member = {**self.member, **fields}
        await self._show()


class MyTeamHandler(MiniappHandler, Paging):
    openapi = {
        "get": {
            "summary": "My team, newest first: direct members (depth=1) or theirs (depth=2); names masked",
            "security": MINIAPP_SECURITY,
            "parameters": [{"name": "depth", "in": "query", "schema": {"type": "string", "enum": ["1", "2"], "default": "1"}},
                           CURSOR_PARAMETER, LIMIT_PARAMETER],
            "responses": {"200": json_response("A page of teammates", page_schema(ref("Teammate"))),
                          **error_responses(400, 401)},
        }
    }

    async def get(self) -> None:
        depth = self.get_query_argument("depth", "1")
        if depth not in ("1", "2"):
            raise ApiError(400, "invalid", "depth must be 1 or 2", field="depth")
        members, next_cursor = await self.team_page(self.member, int(depth))
        self.write_json({"items": [teammate_view(m) for m in members], "next_cursor": next_cursor})
