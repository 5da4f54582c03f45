"""Member life cycle on the official account, and members as the API shows them."""

from __future__ import annotations

from datetime import datetime

from stores.members import MemberStore, Upserted

UNNAMED_PROMOTER = "推广员"

PUBLIC_FIELDS = (
    "oa_openid", "miniapp_openid", "unionid", "nickname", "avatar_url", "subscribed",
    "upline_id", "ancestor_ids", "bound_at", "bind_source", "direct_count", "team_count", "frozen", "promoter_status",
    "created_at",
)


def member_json(member: dict) -> dict:
    shown = {"id": member["_id"]}
    for name in PUBLIC_FIELDS:
        value = member.get(name)
        shown[name] = value.isoformat() if isinstance(value, datetime) else value
    return shown


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
