"""The message router picks the most specific route: keyword, menu key, event, type."""

import pytest
from wechatpy import parse_message

from bot.router import MessageRouter, Push, event, fallback, keyword, keywords, menu_click, message
from bot.simulate import event_xml, push_xml, text_xml


async def named(name):
    async def handler(push):
        return name

    return handler


@pytest.fixture
async def router():
    return MessageRouter(
        [
            keyword("海报", await named("poster-keyword")),
            message("text", await named("any-text")),
            menu_click("POSTER", await named("poster-menu")),
            event("click", await named("other-click")),
            event("subscribe", await named("subscribe")),
            message("image", await named("image")),
            keywords(merchant_keywords, await named("merchant-keyword")),
        ],
        otherwise=fallback(await named("fallback")),
    )


async def merchant_keywords(runtime, text: str) -> bool:
    return text.casefold() in {"poster", "邀请码"}


@pytest.mark.parametrize(
    "xml, expected",
    [
        (text_xml("o", " 海报 "), "poster-keyword"),
        (text_xml("o", "海报呢"), "any-text"),
        (text_xml("o", " Poster"), "merchant-keyword"),
        (text_xml("o", "邀请码"), "merchant-keyword"),
        (event_xml("o", "CLICK", "POSTER"), "poster-menu"),
        (event_xml("o", "click", "OTHER"), "other-click"),
        (event_xml("o", "SUBSCRIBE"), "subscribe"),  # event names arrive in either case
        (event_xml("o", "subscribe", "qrscene_p:1"), "subscribe"),
        (push_xml({"ToUserName": "a", "FromUserName": "o", "CreateTime": 1, "MsgType": "image", "MsgId": 1}), "image"),
        (event_xml("o", "VIEW", "http://x"), "fallback"),
    ],
)
async def test_most_specific_route_wins(router, xml, expected):
    route = await router.resolve(Push(parse_message(xml), runtime=None))
    assert await route.handler(None) == expected


def test_a_route_may_be_declared_once():
    async def handler(push):
        return None

    with pytest.raises(ValueError, match="two routes"):
        MessageRouter([keyword("海报", handler), keyword(" 海报", handler)], otherwise=fallback(handler))


async def test_routes_sharing_a_lookup_ask_it_once_per_push_and_take_its_meaning():
    asked = []

    async def topic(runtime, text):
        asked.append(text)
        return {"佣金": "commission", "团队": "team"}.get(text)

    router = MessageRouter(
        [keywords(topic, await named("commission"), meaning="commission"),
         keywords(topic, await named("team"), meaning="team")],
        otherwise=fallback(await named("fallback")),
    )
    answers = [await (await router.resolve(Push(parse_message(text_xml("o", text)), runtime=None))).handler(None)
               for text in ("团队", "佣金", "你好")]
    assert answers == ["team", "commission", "fallback"]
    assert asked == ["团队", "佣金", "你好"]


def test_a_lookups_meaning_may_be_routed_once():
    async def handler(push):
        return None

    async def lookup(runtime, text):
        return "x"

    with pytest.raises(ValueError, match="two routes"):
        MessageRouter([keywords(lookup, handler, meaning="x"), keywords(lookup, handler, meaning="x")],
                      otherwise=fallback(handler))
