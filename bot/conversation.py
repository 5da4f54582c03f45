"""What the official account says: the route table and its handlers."""

from __future__ import annotations

import asyncio

from wechatpy.replies import BaseReply, ImageReply

from bot.dedup import push_id
from bot.router import (Handler, MessageRouter, Push, Route, event, fallback, keywords, menu_click,
                        push_kind)
from distribution.agreements import AgreementAct
from distribution.binding import BindSource
from distribution.chat import MENU_KEYS, POSTER, Topic
from distribution.scene import scene_from_event_key
from services.agreements import AgreementRequired
from services.members import promoter_name
from services.posters import REPLY_SECONDS, NotAPromoter, PosterUnavailable
from services.relations import BindOutcome


def pushed_scene(push: Push) -> str | None:
    """The scene of the code scanned, if this push came from one (wechatpy strips `qrscene_` on follows)."""
    key = getattr(push.message, "scene_id", None) or getattr(push.message, "key", None)
    return scene_from_event_key(push_kind(push.message)[1], key)


RESOLVE_UNIONID_JOB = "resolve_unionid"


async def _bind_from_scan(push: Push) -> BindOutcome | None:
    upserted = await push.runtime.members.subscribed(push.openid, push.received_at)
    if upserted.created:  # the worker asks WeChat for the unionid that joins the mini-program's member
        await push.runtime.queue.enqueue(RESOLVE_UNIONID_JOB, {"openid": push.openid})
    scene = pushed_scene(push)
    if scene is None:
        return None
    return await push.runtime.relations.bind_scene(upserted.member, scene, BindSource.OA_SCAN, push.received_at,
                                                   created_by_this_push=upserted.created)


async def welcome(push: Push) -> BaseReply:
    outcome = await _bind_from_scan(push)
    text = push.runtime.settings.welcome_text
    if outcome is not None and outcome.bound:
        text += f"\n你的推广人：{promoter_name(outcome.upline)}"
    return push.text(text)


async def scanned(push: Push) -> BaseReply | None:
    """A follower scanned a code again: bind if the rules allow, and say so."""
    outcome = await _bind_from_scan(push)
    if outcome is not None and outcome.bound:
        return push.text(f"你已加入 {promoter_name(outcome.upline)} 的推广团队")
    return None


async def farewell(push: Push) -> None:
    await push.runtime.members.unsubscribed(push.openid, push.received_at)


async def default_reply(push: Push) -> BaseReply | None:
    if push.message.type == "text":
        return push.text(push.runtime.settings.default_reply)
    return None


async def _member_of(push: Push) -> dict:
    runtime = push.runtime
    member = await runtime.members.by_oa_openid(push.openid)
    if member is None:  # followed before this server knew the account
        upserted = await runtime.members.subscribed(push.openid, push.received_at)
        if upserted.created:
            await runtime.queue.enqueue(RESOLVE_UNIONID_JOB, {"openid": push.openid})
        member = upserted.member
    return member


# --- Posters: the merchant's keywords (海报 by default) or the POSTER menu key ---------------

NOT_A_PROMOTER = "你还不是推广员，暂时不能生成推广海报。"
POSTER_UNAVAILABLE = "海报暂时无法生成，请稍后再试。"
AGREEMENT_REQUIRED = "请先在小程序中阅读并同意推广员协议，再生成推广海报。"


async def send_poster(push: Push) -> BaseReply | None:
    """The poster as an image reply when it is ready within WeChat's time; else "success" now and
    the image by customer-service message once it is."""
    deadline = asyncio.get_running_loop().time() + REPLY_SECONDS
    runtime = push.runtime
    member = await _member_of(push)
    try:
        await runtime.agreements.require(member, AgreementAct.SHARE)
        media_id = await runtime.posters.for_chat(member, push.openid, push_id(push.message), deadline)
    except AgreementRequired:
        return push.text(AGREEMENT_REQUIRED)
    except NotAPromoter:
        return push.text(NOT_A_PROMOTER)
    except PosterUnavailable:
        return push.text(POSTER_UNAVAILABLE)
    return ImageReply(message=push.message, media_id=media_id) if media_id else None


async def asks_for_poster(runtime, text: str) -> bool:
    return await runtime.posters.is_keyword(text)


# --- The promoter's questions: the merchant's keywords (佣金, 团队, 提现, 帮助 by default) or the menu's keys -------


def answering(topic: Topic) -> Handler:
    """The member's own figures on `topic` (or how to become a promoter), read once per push: the reply is
    remembered for WeChat's retries, which get it byte for byte."""
    async def answer(push: Push) -> BaseReply:
        member = await _member_of(push)
        return push.text(await push.runtime.chat.answer(topic, member, push.openid, push.received_at))

    return answer


async def tell_help(push: Push) -> BaseReply:
    return push.text(await push.runtime.chat.help())


async def asked_topic(runtime, text: str) -> Topic | None:
    return await runtime.chat.topic_of(text)


def asked(topic: Topic, handler: Handler, safe_to_repeat: bool = False) -> list[Route]:
    """`topic`'s keywords and its menu key, answered by `handler`."""
    return [keywords(asked_topic, handler, safe_to_repeat, meaning=topic),
            menu_click(MENU_KEYS[topic], handler, safe_to_repeat)]


def build_router() -> MessageRouter:
    return MessageRouter(
        [
            event("subscribe", welcome),
            event("scan", scanned),
            event("unsubscribe", farewell),
            keywords(asks_for_poster, send_poster),  # the merchant's (海报 by default)
            menu_click(POSTER, send_poster),
            *asked(Topic.COMMISSION, answering(Topic.COMMISSION)),
            *asked(Topic.TEAM, answering(Topic.TEAM)),
            *asked(Topic.WITHDRAW, answering(Topic.WITHDRAW)),  # and the withdrawal page's card
            *asked(Topic.HELP, tell_help, safe_to_repeat=True),  # the merchant's settings only: said again to retries
        ],
        otherwise=fallback(default_reply, safe_to_repeat=True),
    )
