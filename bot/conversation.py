"""What the official account says: the route table and its handlers."""

from __future__ import annotations

from datetime import datetime, timezone

from wechatpy.replies import BaseReply

from bot.router import MessageRouter, Push, event, push_kind
from distribution.binding import BindSource
from distribution.scene import scene_from_event_key
from services.relations import BindOutcome

UNNAMED_PROMOTER = "推广员"


def promoter_name(upline: dict | None) -> str:
    return (upline or {}).get("nickname") or UNNAMED_PROMOTER


def pushed_scene(push: Push) -> str | None:
    """The scene of the code scanned, if this push came from one (wechatpy strips `qrscene_` on follows)."""
    key = getattr(push.message, "scene_id", None) or getattr(push.message, "key", None)
    return scene_from_event_key(push_kind(push.message)[1], key)


async def _bind_from_scan(push: Push, now: datetime) -> BindOutcome | None:
    upserted = await push.runtime.members.subscribed(push.openid, now)
    scene = pushed_scene(push)
    if scene is None:
        return None
    return await push.runtime.relations.bind_scene(upserted.member["_id"], scene, BindSource.OA_SCAN, now,
                                                   created_by_this_push=upserted.created)


async def welcome(push: Push) -> BaseReply:
    outcome = await _bind_from_scan(push, datetime.now(timezone.utc))
    text = push.runtime.settings.welcome_text
    if outcome is not None and outcome.bound:
        text += f"\n你的推广人：{promoter_name(outcome.upline)}"
    return push.text(text)


async def scanned(push: Push) -> BaseReply | None:
    """A follower scanned a code again: bind if the rules allow, and say so."""
    outcome = await _bind_from_scan(push, datetime.now(timezone.utc))
    if outcome is not None and outcome.bound:
        return push.text(f"你已加入 {promoter_name(outcome.upline)} 的推广团队")
    return None


async def farewell(push: Push) -> None:
    await push.runtime.members.unsubscribed(push.openid, datetime.now(timezone.utc))


async def default_reply(push: Push) -> BaseReply | None:
    if push.message.type == "text":
        return push.text(push.runtime.settings.default_reply)
    return None


def build_router() -> MessageRouter:
    return MessageRouter(
        [
            event("subscribe", welcome),
            event("scan", scanned),
            event("unsubscribe", farewell),
        ],
        fallback=default_reply,
    )
