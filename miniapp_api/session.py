"""POST /api/v1/session: log in with a `wx.login` code; DELETE: log out."""

from __future__ import annotations

from datetime import datetime, timezone

from distribution.binding import BindSource
from distribution.rate_limits import Action
from miniapp_api.auth import MEMBER_SESSION, bearer_token
from miniapp_api.requests import LoginRequest
from services.identity import Profile
from services.risk import Origin
from web.base import BaseHandler
from web.models import Me, Session
from web.openapi import Reply, operation


class SessionHandler(BaseHandler):
    @operation("Log in with a wx.login code; a promoter's scene binds the member to that promoter",
               body=LoginRequest, responses={200: Reply("A session token and the member", Session)}, errors=(429,))
    async def post(self) -> None:
        login = self.parse_body(LoginRequest)
        limits = self.runtime.limits
        await limits.check(Action.MINIAPP_LOGIN, ip=self.client_ip)
        now = datetime.now(timezone.utc)
        profile = Profile(**login.profile.model_dump()) if login.profile else Profile()
        upserted = await self.runtime.identity.miniapp_login(
            login.code, profile, now, admit=lambda openid: limits.check(Action.MINIAPP_LOGIN, openid=openid))
        member = upserted.member
        await self.runtime.risk.note_login(member, login.device_id, self.client_ip)
        upline = None
        if login.scene:
            outcome = await self.runtime.relations.bind_scene(member, login.scene, BindSource.MINIAPP_SCENE, now,
                                                              created_by_this_push=upserted.created,
                                                              origin=Origin(login.device_id, self.client_ip))
            member = await self.runtime.members.get(member["_id"])
            upline = outcome.upline if outcome.bound else None
        if upline is None and member.get("upline_id"):
            upline = await self.runtime.members.get(member["upline_id"])
        token = await self.runtime.sessions.issue(member["_id"])
        balances = await self.runtime.ledger.balances(member["_id"])
        self.write_model(Session(token=token, member=Me.from_document(member, upline, balances, self.runtime.sealer)))

    @operation("Log out: the token stops working at once", security=MEMBER_SESSION,
               responses={204: Reply("Logged out")})
    async def delete(self) -> None:
        token = bearer_token(self.request.headers.get("Authorization", ""))
        if token:
            await self.runtime.sessions.revoke(token)
        self.set_status(204)
        self.finish()
