"""What the official account says: the route table and its handlers."""

from __future__ import annotations

from datetime import datetime, timezone

from wechatpy.replies import BaseReply

from bot.router import MessageRouter, Push, event


async def welcome(push: Push) -> BaseReply:
    await push.runtime.members.subscribed(push.openid, datetime.now(timezone.utc))
    return push.text(push.runtime.settings.welcome_text)


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
            event("unsubscribe", farewell),
        ],
        fallback=default_reply,
    )
