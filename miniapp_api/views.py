"""Members as the mini-program shows them: one's own profile in full, others masked."""

from __future__ import annotations

from services.sealing import Sealer, mask_phone

NO_BALANCES = {"frozen_fen": 0, "available_fen": 0, "locked_fen": 0}


def mask_name(name: str | None) -> str:
    """张** / a***: a teammate is recognisable to their upline, not identifiable by strangers."""
    if not name:
        return "*"
    return name[0] + "*" * min(max(len(name) - 1, 1), 3)


def me_view(member: dict, upline: dict | None, balances: dict, sealer: Sealer) -> dict:
    sealed_phone = member.get("phone_sealed")
    return {
        "id": member["_id"],
        "nickname": member.get("nickname"),
        "avatar_url": member.get("avatar_url"),
        "phone": mask_phone(sealer.open(sealed_phone)) if sealed_phone else None,
        "grade": member.get("grade"),
        "promoter_status": member.get("promoter_status"),
        "upline": {"nickname": upline.get("nickname")} if upline else None,
        "balances": balances,
        "direct_count": member.get("direct_count", 0),
        "team_count": member.get("team_count", 0),
        "joined_at": member["created_at"],
    }


def teammate_view(member: dict) -> dict:
    return {
        "id": member["_id"],
        "nickname": mask_name(member.get("nickname")),
        "avatar_url": member.get("avatar_url"),
        "joined_at": member.get("bound_at"),
        "order_count": member.get("order_count", 0),
        "order_fen": member.get("order_fen", 0),
    }
