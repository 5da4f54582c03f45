"""Every mini-program endpoint but login: `Authorization: Bearer <session token>`."""

from __future__ import annotations

from web.base import ApiError, BaseHandler

MEMBER_SESSION = "memberSession"


def bearer_token(authorization: str) -> str | None:
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class MiniappHandler(BaseHandler):
    security = MEMBER_SESSION
    member: dict

    async def prepare(self) -> None:
        super().prepare()
        token = bearer_token(self.request.headers.get("Authorization", ""))
        member_id = await self.runtime.sessions.member_of(token) if token else None
        member = await self.runtime.members.get(member_id) if member_id else None
        if member is not None and member.get("merged_into"):
            member = await self.runtime.members.get(member["merged_into"])
        # An erased member's sessions end with its deletion, on every server at once.
        if member is None or member.get("erased_at"):
            raise ApiError(401, "unauthorized", "log in first: a valid session token is required")
        self.member = member
