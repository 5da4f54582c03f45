"""POST /api/v1/session: log in with a `wx.login` code; DELETE: log out."""

from __future__ import annotations

from datetime import datetime, timezone

from distribution.binding import BindSource
from web.base import ApiError, BaseHandler
from web.openapi import error_responses, json_response, ref
from miniapp_api.auth import MINIAPP_SECURITY, bearer_token
from miniapp_api.requests import LoginRequest
from miniapp_api.views import NO_BALANCES, me_view
from services.identity import InvalidLoginCode, Profile

LOGIN_BODY = {
    "type": "object", "required": ["code"], "additionalProperties": False,
    "properties": {
        "code": {"type": "string", "minLength": 1, "maxLength": 128, "description": "from wx.login"},
        "scene": {"type": ["string", "null"], "maxLength": 64, "description": "the promoter's mini-program code scene"},
        "profile": {"type": ["object", "null"], "additionalProperties": False, "properties": {
            "nickname": {"type": ["string", "null"], "maxLength": 32},
            "avatar_url": {"type": ["string", "null"], "maxLength": 512}}},
    },
}


class SessionHandler(BaseHandler):
    openapi = {
        "post": {
            "summary": "Log in with a wx.login code; a promoter's scene binds the member to that promoter",
            "requestBody": {"required": True, "content": {"application/json": {"schema": LOGIN_BODY}}},
            "responses": {
                "200": json_response("A session token and the member", {
                    "type": "object", "required": ["token", "member"],
                    "properties": {"token": {"type": "string"}, "member": ref("Me")}}),
                **error_responses(400, 503),
            },
        },
        "delete": {
            "summary": "Log out: the token stops working at once",
            "security": MINIAPP_SECURITY,
            "responses": {"204": {"description": "Logged out"}},
        },
    }

    async def post(self) -> None:
        login = self.parse_body(LoginRequest)
        now = datetime.now(timezone.utc)
        profile = Profile(**vars(login.profile)) if login.profile else Profile()
        try:
            upserted = await self.runtime.identity.miniapp_login(login.code, profile, now)
        except InvalidLoginCode as invalid:
            raise ApiError(400, "invalid_code", str(invalid), field="code") from None
        member = upserted.member
        upline = None
        if login.scene:
            outcome = await self.runtime.relations.bind_scene(member, login.scene, BindSource.MINIAPP_SCENE, now,
                                                              created_by_this_push=upserted.created)
            member = await self.runtime.members.get(member["_id"])
            upline = outcome.upline if outcome.bound else None
        if upline is None and member.get("upline_id"):
            upline = await self.runtime.members.get(member["upline_id"])
        token = await self.runtime.sessions.issue(member["_id"])
        self.write_json({"token": token, "member": me_view(member, upline, NO_BALANCES, self.runtime.sealer)})

    async def delete(self) -> None:
        token = bearer_token(self.request.headers.get("Authorization", ""))
        if token:
            await self.runtime.sessions.revoke(token)
        self.set_status(204)
        self.finish()
