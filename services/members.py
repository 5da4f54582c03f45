"""Member life cycle on the official account, and how a promoter is named to their team."""

from __future__ import annotations

from datetime import datetime

from distribution import errors
from stores.members import MemberStore, Upserted

UNNAMED_PROMOTER = "推广员"

class MemberNotFound(errors.NotFound):
    code = "member_not_found"


def promoter_name(upline: dict | None) -> str:
    """How a promoter is named to the members they brought: their nickname, or a neutral word."""
    return (upline or {}).get("nickname") or UNNAMED_PROMOTER


class MemberService:
    def __init__(self, store: MemberStore):
        self.store = store

    async def subscribed(self, openid: str, at: datetime) -> Upserted:
        return await self.store.mark_oa_subscribed(openid, True, at)

    async def unsubscribed(self, openid: str, at: datetime) -> Upserted:
        return await self.store.mark_oa_subscribed(openid, False, at)

    async def get(self, member_id: str) -> dict | None:
        return await self.store.get(member_id)

    async def by_oa_openid(self, openid: str) -> dict | None:
        return await self.store.by_oa_openid(openid)

    async def team_page(self, member: dict, level: int | None, limit: int,
                        after: tuple[datetime, str] | None) -> list[dict]:
        """`member`'s team newest first (level 1: direct members, 2: theirs, None: everyone below), `limit`
        members after the cursor `(bound_at, _id)`."""
        return await self.store.team_page(member, level, limit, after)
