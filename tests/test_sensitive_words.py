"""The merchant's sensitive words: poster headlines and application texts with one are refused naming it, and
nicknames with one are printed on posters as a neutral name."""

from __future__ import annotations

from distribution.content import ContentSettings
from distribution.poster_settings import PosterSettings
from tests.conftest import MERCHANT_TOKEN
from tests.console_fixtures import staff_client
from tests.test_applications import APPLICATION, reviewed_shop
from tests.test_miniapp_session import auth, login
from tests.test_relations import add_member

MERCHANT = {"Authorization": f"Bearer {MERCHANT_TOKEN}"}


def posters_with(headline: str) -> dict:
    return {"templates": {"spring": {"design": "fresh", "headline": headline}}, "default_template": "spring"}


async def put(server, name: str, body: dict):
    return await server.http.put(f"/api/merchant/v1/settings/{name}", json=body, headers=MERCHANT)


async def test_the_default_list_refuses_an_absolute_claim_in_a_poster_headline_naming_the_word(server):
    refused = await put(server, "posters", posters_with("全网ＮＯ.1 国家级好茶"))
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert (error["code"], error["field"]) == ("sensitive_word", "templates.spring.headline")
    assert "国家级" in error["message"]
    assert await server.runtime.merchant_settings.stored(PosterSettings) == PosterSettings()

    assert (await put(server, "posters", posters_with("春季大促\n好茶送好友"))).status_code == 200


async def test_the_merchants_own_words_are_matched_ignoring_case_and_width(server):
    default = (await server.merchant_get("/api/merchant/v1/settings/content")).json()
    assert {"最高级", "第一", "最佳", "国家级", "顶级", "极品", "100%有效"} <= set(default["sensitive_words"])
    saved = await put(server, "content", {"sensitive_words": ["Best", "秒杀"], "neutral_name": "好友"})
    assert saved.status_code == 200

    refused = await put(server, "posters", posters_with("ＢＥＳＴ tea"))
    assert refused.status_code == 400 and "Best" in refused.json()["error"]["message"]
    assert (await put(server, "posters", posters_with("国家级好茶"))).status_code == 200  # no longer listed

    twice = await put(server, "content", {"sensitive_words": ["秒杀", "秒杀"]})
    assert twice.status_code == 400 and twice.json()["error"]["field"] == "sensitive_words[1]"


async def test_an_application_text_with_a_word_is_refused_and_nothing_is_stored(server):
    await reviewed_shop(server)
    session = await login(server, "boaster")
    headers = auth(session["token"])
    refused = await server.http.post("/api/v1/promoter-application",
                                     json={**APPLICATION, "reason": "我的团队是全网最佳的"}, headers=headers)
    assert refused.status_code == 400
    assert (refused.json()["error"]["code"], refused.json()["error"]["field"]) == ("sensitive_word", "reason")
    assert "最佳" in refused.json()["error"]["message"]
    assert await server.runtime.db.applications.count_documents({}) == 0
    assert (await server.runtime.members.get(session["member"]["id"]))["promoter_status"] == "none"

    applied = await server.http.post("/api/v1/promoter-application", json=APPLICATION, headers=headers)
    assert applied.status_code == 201


async def test_a_nickname_with_a_word_is_printed_as_the_neutral_name_on_the_poster_only(server):
    runtime = server.runtime
    await runtime.merchant_settings.put(ContentSettings(sensitive_words=("极品",), neutral_name="好友"))
    boaster = await add_member(runtime, nickname="极品小王")
    plain = await add_member(runtime, nickname="小李")

    assert (await runtime.posters.plan(boaster)).nickname == "好友"
    assert (await runtime.posters.plan(plain)).nickname == "小李"
    assert (await runtime.members.get(boaster["_id"]))["nickname"] == "极品小王"  # the member keeps their name
    poster = await server.http.get(f"/api/merchant/v1/members/{boaster['_id']}/poster", headers=MERCHANT)
    assert poster.status_code == 200 and poster.headers["Content-Type"] == "image/jpeg"


async def test_the_console_form_shows_the_list_and_refuses_a_headline_naming_the_word(server):
    owner = await staff_client(server, "owner")
    page = await owner.get("/admin/settings/content")
    assert page.status_code == 200 and "敏感词库" in page.text and "国家级" in page.text
    refused = await owner.post("/admin/settings/posters", {
        "templates": '{"spring": {"design": "fresh", "headline": "顶级好茶"}}', "default_template": "spring"})
    assert refused.status_code == 400 and "顶级" in refused.text
    assert await server.runtime.merchant_settings.stored(PosterSettings) == PosterSettings()
