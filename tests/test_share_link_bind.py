"""The H5 share link end to end: the link's page, the sandbox's web authorization, the bind page.

Everything travels over real HTTP: the test plays the browser, following the
server's redirect to the sandbox's authorize page (naming the simulated user
with `sandbox_user`) and the sandbox's redirect back to the bind page.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import httpx

from bot.simulate import event_xml
from distribution.binding import BindMode
from distribution.share_links import share_link, share_signature
from sandbox import Fault, openid_for, unionid_for
from services.posters import ShareLinkSettings
from stores.bind_log import BIND_LOG
from stores.members import new_member_id
from tests.test_relations import add_member, use_settings

ACCESS_TOKEN_ENDPOINT = "sns/oauth2/access_token"


def local(server, url: str) -> str:
    """The path and query of a URL under PUBLIC_BASE_URL, to request from the server under test
    (which listens on a port of its own, as a server behind a load balancer would)."""
    base = server.runtime.settings.public_base_url
    assert url.startswith(base + "/"), url
    return url.removeprefix(base)


def link_path(server, member_id: str) -> str:
    settings = server.runtime.settings
    return local(server, share_link(settings.public_base_url, member_id, settings.share_link_secret))


async def authorize(server, member_id: str, user: str) -> str:
    """Open the promoter's link as `user` up to WeChat's redirect back: the bind page's path and query."""
    opened = await server.http.get(link_path(server, member_id))
    assert opened.status_code == 302, opened.text
    authorize_url, _, fragment = opened.headers["location"].partition("#")
    assert fragment == "wechat_redirect"
    async with httpx.AsyncClient(timeout=5) as browser:
        consented = await browser.get(f"{authorize_url}&sandbox_user={user}")
    assert consented.status_code == 302, consented.text
    return local(server, consented.headers["location"])


async def open_link(server, member_id: str, user: str) -> httpx.Response:
    return await server.http.get(await authorize(server, member_id, user))


def oa_openid(server, user: str) -> str:
    return openid_for(server.runtime.settings.wechat_app_id, user)


async def binds(server) -> list[tuple[str | None, str | None, str, str, str | None]]:
    """The whole bind log once the worker has logged the binds, oldest first: (member, upline, source,
    result, reason)."""
    await server.runtime.relations.apply_follow_ups()
    entries = server.runtime.db[BIND_LOG].find().sort("_id", 1)
    return [(e["member_id"], e["upline_id"], e["source"], e["result"], e["reason"]) async for e in entries]


def assert_page(response: httpx.Response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    for word in words:
        assert word in response.text, (word, response.text)


async def test_the_link_sends_the_visitor_to_silent_web_authorization(server):
    promoter = await add_member(server.runtime, nickname="小王")
    settings = server.runtime.settings

    opened = await server.http.get(link_path(server, promoter["_id"]))

    assert opened.status_code == 302
    location = urlsplit(opened.headers["location"])
    assert f"{location.scheme}://{location.netloc}" == settings.wechat_open_base
    assert location.path == "/connect/oauth2/authorize" and location.fragment == "wechat_redirect"
    assert parse_qsl(location.query) == [
        ("appid", settings.wechat_app_id),
        ("redirect_uri", f"{settings.public_base_url}/s/{promoter['_id']}/bind"),
        ("response_type", "code"),
        ("scope", "snsapi_base"),
        ("state", share_signature(promoter["_id"], settings.share_link_secret)),
    ]
    assert await server.runtime.db.members.count_documents({}) == 1


async def test_a_good_link_binds_a_new_visitor_to_the_promoter_and_names_them(server):
    runtime = server.runtime
    promoter = await add_member(runtime, nickname="小王")

    page = await open_link(server, promoter["_id"], "alice")

    assert_page(page, 200, "你的推广人：小王")
    visitor = await runtime.members.by_oa_openid(oa_openid(server, "alice"))
    assert visitor["upline_id"] == promoter["_id"] and visitor["bind_source"] == "share_link"
    assert visitor["unionid"] == unionid_for("alice")
    assert visitor.get("subscribed") is None  # opening a page is not following the account
    assert await binds(server) == [(visitor["_id"], promoter["_id"], "share_link", "bound", None)]
    logged = (await server.merchant_get(f"/api/merchant/v1/members/{visitor['_id']}/binds")).json()["items"]
    assert [(e["source"], e["result"]) for e in logged] == [("share_link", "bound")]


async def test_the_page_names_an_unnamed_promoter_neutrally_and_escapes_names(server):
    unnamed = await add_member(server.runtime)
    scripted = await add_member(server.runtime, nickname="<script>x</script>")

    assert_page(await open_link(server, unnamed["_id"], "alice"), 200, "你的推广人：推广员")
    page = await open_link(server, scripted["_id"], "bob")

    assert_page(page, 200, "&lt;script&gt;x&lt;/script&gt;")
    assert "<script>" not in page.text


async def test_forged_missing_or_unknown_links_are_refused_and_write_nothing(server, sandbox):
    runtime = server.runtime
    promoter = await add_member(runtime, nickname="小王")
    other = await add_member(runtime)
    secret = runtime.settings.share_link_secret
    good = share_signature(promoter["_id"], secret)
    stranger = new_member_id()  # well formed and signed, but nobody
    refused = {
        f"/s/{promoter['_id']}": 403,
        f"/s/{promoter['_id']}?sig=": 403,
        f"/s/{promoter['_id']}?sig={'B' if good[0] == 'A' else 'A'}{good[1:]}": 403,
        f"/s/{promoter['_id']}?sig={share_signature(other['_id'], secret)}": 403,
        f"/s/nobody?sig={good}": 404,
        f"/s/{promoter['_id'].upper()}?sig={good}": 404,
        f"/s/{stranger}?sig={share_signature(stranger, secret)}": 404,
    }
    for path, status in refused.items():
        assert_page(await server.http.get(path), status)

    bind_page = await authorize(server, promoter["_id"], "alice")
    code = dict(parse_qsl(urlsplit(bind_page).query))["code"]
    callbacks = {f"code={code}": 403, f"code={code}&state={share_signature(other['_id'], secret)}": 403,
                 f"state={good}": 400}
    for query, status in callbacks.items():
        assert_page(await server.http.get(f"/s/{promoter['_id']}/bind?{query}"), status)

    assert sandbox.state.calls.received(ACCESS_TOKEN_ENDPOINT) == []  # the code was never even exchanged
    assert await runtime.db.members.count_documents({}) == 2
    assert await binds(server) == []


async def test_without_share_link_settings_no_link_opens(server, monkeypatch):
    promoter = await add_member(server.runtime)
    path = link_path(server, promoter["_id"])
    monkeypatch.setattr(server.runtime.share_links, "links", ShareLinkSettings(public_base_url=None, secret=None))

    assert_page(await server.http.get(path), 404, "未启用")


async def test_a_reused_code_is_refused_and_binds_once(server):
    promoter = await add_member(server.runtime, nickname="小王")
    bind_page = await authorize(server, promoter["_id"], "alice")

    assert_page(await server.http.get(bind_page), 200, "小王")
    reloaded = await server.http.get(bind_page)

    assert_page(reloaded, 400, "重新打开")
    assert [entry[3] for entry in await binds(server)] == ["bound"]
    made_up = await server.http.get(bind_page.replace("code=", "code=x"))
    assert_page(made_up, 400, "重新打开")


async def test_a_bound_visitor_opening_another_link_sees_a_neutral_page_and_the_refusal_is_logged(server):
    runtime = server.runtime
    first, second = await add_member(runtime, nickname="小王"), await add_member(runtime, nickname="小李")
    await open_link(server, first["_id"], "alice")

    page = await open_link(server, second["_id"], "alice")

    assert_page(page, 200, "欢迎")
    assert "小李" not in page.text and "小王" not in page.text
    visitor = await runtime.members.by_oa_openid(oa_openid(server, "alice"))
    assert visitor["upline_id"] == first["_id"]
    assert await binds(server) == [(visitor["_id"], first["_id"], "share_link", "bound", None),
                                   (visitor["_id"], second["_id"], "share_link", "refused", "already_bound")]


async def test_only_a_visitor_new_to_this_request_counts_as_new(server):
    runtime = server.runtime
    await use_settings(runtime, bind_mode=BindMode.NEW_MEMBERS_ONLY.value)
    promoter = await add_member(runtime, nickname="小王")
    await server.push(event_xml(oa_openid(server, "carol"), "subscribe"))

    assert_page(await open_link(server, promoter["_id"], "dave"), 200, "小王")
    assert_page(await open_link(server, promoter["_id"], "carol"), 200, "欢迎")

    results = [(member, result, reason) for member, _, _, result, reason in await binds(server)]
    dave = await runtime.members.by_oa_openid(oa_openid(server, "dave"))
    carol = await runtime.members.by_oa_openid(oa_openid(server, "carol"))
    assert results == [(dave["_id"], "bound", None), (carol["_id"], "refused", "not_new_member")]


async def test_wechat_failing_the_exchange_is_a_503_and_writes_nothing(server, sandbox):
    promoter = await add_member(server.runtime, nickname="小王")
    bind_page = await authorize(server, promoter["_id"], "alice")
    sandbox.state.faults.add(Fault(ACCESS_TOKEN_ENDPOINT, errcode=-1))

    assert_page(await server.http.get(bind_page), 503, "稍后")

    assert await server.runtime.db.members.count_documents({}) == 1
    assert await binds(server) == []


async def test_a_subscribed_follower_stays_subscribed_and_is_bound_as_themself(server):
    runtime = server.runtime
    promoter = await add_member(runtime, nickname="小王")
    await server.push(event_xml(oa_openid(server, "carol"), "subscribe"))
    follower = await runtime.members.by_oa_openid(oa_openid(server, "carol"))
    assert follower["subscribed"] is True

    assert_page(await open_link(server, promoter["_id"], "carol"), 200, "小王")

    after = await runtime.members.get(follower["_id"])
    assert after["subscribed"] is True and after["upline_id"] == promoter["_id"]
    assert await runtime.db.members.count_documents({}) == 2


async def test_a_mini_program_member_opening_the_link_is_joined_by_unionid_and_bound(server):
    runtime = server.runtime
    promoter = await add_member(runtime, nickname="小王")
    session = await server.http.post("/api/v1/session", json={"code": "erin"})
    mini_member_id = session.json()["member"]["id"]

    assert_page(await open_link(server, promoter["_id"], "erin"), 200, "小王")

    joined = await runtime.members.by_oa_openid(oa_openid(server, "erin"))
    assert joined["_id"] == mini_member_id and joined["upline_id"] == promoter["_id"]
    assert [(member, result) for member, _, _, result, _ in await binds(server)] == [(mini_member_id, "bound")]
