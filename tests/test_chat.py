"""The promoter's conversation end to end: real pushes to /wechat, answered from the ledger, the commissions, the
team and the merchant's settings, to the fen and for the asker alone; the way to promote for the others; the
withdrawal page's card through the sandbox WeChat; retries answered byte for byte."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from bot.simulate import event_xml, text_xml
from distribution.binding import BindingSettings, PromoterStatus, UplineEligibility
from distribution.calendar import china_time
from distribution.chat import CARD_SENT, NO_WITHDRAW_PAGE, STATUS_WORDS, ChatSettings, Periods, level_words
from distribution.ledger import EntryKind
from distribution.money import yuan
from distribution.scene import promoter_scene
from distribution.withdrawals import WithdrawalRules
from sandbox import Fault
from tests.conftest import MERCHANT_TOKEN
from tests.console_fixtures import staff_client
from tests.order_fixtures import create_order, drain, item, send_event
from tests.test_miniapp_session import auth, login
from tests.test_posters import ask, calls, parsed_reply
from tests.test_relations import add_member

MERCHANT = {"Authorization": f"Bearer {MERCHANT_TOKEN}"}
PROMOTER = "o_chat_promoter"
CUSTOM_SEND = "cgi-bin/message/custom/send"


async def order(runtime, order_no: str, buyer: dict, paid_fen: int, *events: str) -> None:
    """An order paid now, then its other events (confirmed, refunded in full) as the worker applies them."""
    await create_order(runtime, order_no, buyer, [item(paid_fen)])
    for event in ("paid", *events):
        await send_event(runtime, order_no, f"{order_no}-{event}", event)
        await drain(runtime)


async def promoter_with_money(server) -> dict:
    """A promoter (signed in to the mini-program too) with a two-level team: 张三丰 and 李四 followed through the
    promoter's code, 王五 through 张三丰's. Their orders leave the promoter 13.00 frozen (10.00 and 3.00, level 1),
    5.00 settled (level 1) and 10.00 settled then clawed back (level 2, 王五's refunded order), less a withdrawal of
    2.00 waiting for the merchant: frozen 13.00, available 3.00, locked 2.00; 18.00 earned this month."""
    runtime = server.runtime
    session = await login(server, "chat-promoter")
    promoter = await runtime.members.get(session["member"]["id"])
    await runtime.members.store.update_fields(promoter["_id"], {"oa_openid": PROMOTER})
    for openid, upline_id in (("o_zhang", promoter["_id"]), ("o_li", promoter["_id"]), ("o_wang", None)):
        upline_id = upline_id or (await runtime.members.by_oa_openid("o_zhang"))["_id"]
        followed = await server.push(event_xml(openid, "subscribe", f"qrscene_{promoter_scene(upline_id)}"))
        assert followed.status_code == 200
    zhang, li, wang = [await runtime.members.by_oa_openid(openid) for openid in ("o_zhang", "o_li", "o_wang")]
    for member, nickname in ((zhang, "张三丰"), (li, "李四"), (wang, "王五")):
        await runtime.members.store.update_fields(member["_id"], {"nickname": nickname})
    await runtime.relations.apply_follow_ups()

    await order(runtime, "chat-1", zhang, 10_000)
    await order(runtime, "chat-2", zhang, 5_000, "confirmed")
    await order(runtime, "chat-3", wang, 20_000, "confirmed")
    await runtime.commissions.settle_due(datetime.now(timezone.utc) + timedelta(days=8))
    await send_event(runtime, "chat-3", "chat-3-refunded", "refunded")
    await drain(runtime)
    await order(runtime, "chat-4", li, 3_000)
    promoter = await runtime.members.get(promoter["_id"])
    await runtime.withdrawals.request(promoter, 200, "bank", runtime.sealer.seal("{}"), datetime.now(timezone.utc))
    return {"promoter": promoter, "token": session["token"], "zhang": zhang, "li": li, "wang": wang}


async def earned_this_month(runtime, member_id: str) -> int:
    """Commissions posted this month less what refunds took back, as the ledger's entries say."""
    kinds = [kind.value for kind in (EntryKind.COMMISSION_FROZEN, EntryKind.COMMISSION_CANCELLED,
                                     EntryKind.COMMISSION_CLAWBACK)]
    entries = runtime.db.ledger_entries.find({"account_id": member_id, "kind": {"$in": kinds},
                                              "at": {"$gte": Periods.at(datetime.now(timezone.utc)).month}})
    return sum([entry["amount_fen"] async for entry in entries])


async def click(server, openid: str, key: str):
    response = await server.push(event_xml(openid, "CLICK", key))
    assert response.status_code == 200
    return parsed_reply(response.text)


# --- the figures -----------------------------------------------------------------------------------------------


async def test_the_commission_answer_is_the_promoters_own_to_the_fen(server):
    runtime = server.runtime
    team = await promoter_with_money(server)
    me = (await server.http.get("/api/v1/me", headers=auth(team["token"]))).json()
    latest = (await server.http.get("/api/v1/commissions", params={"limit": 3},
                                    headers=auth(team["token"]))).json()["items"]
    assert me["balances"] == {"frozen_fen": 1_300, "available_fen": 300, "locked_fen": 200}
    assert await earned_this_month(runtime, team["promoter"]["_id"]) == 1_800

    reply = await ask(server, PROMOTER, "佣金")

    ordered_at = {each["_id"]: each["created_at"] async for each in runtime.db.orders.find({})}
    assert reply.type == "text"
    assert reply.content.splitlines() == [
        "【我的佣金】",
        f"可提现：{yuan(me['balances']['available_fen'])}",
        f"冻结中：{yuan(me['balances']['frozen_fen'])}（结算后可提现）",
        f"提现中：{yuan(me['balances']['locked_fen'])}",
        "今日收益：18.00元",
        "本月收益：18.00元",
        "最近3笔佣金：",
        *(f"· {yuan(each['net_fen'])}｜{level_words(each['level'])}｜{STATUS_WORDS[each['status']]}｜"
          f"下单 {china_time(ordered_at[each['order_no']])}" for each in latest)]
    assert [(each["order_no"], each["net_fen"], each["level"], each["status"]) for each in latest] == [
        ("chat-4", 300, 1, "frozen"), ("chat-3", 0, 2, "clawed_back"), ("chat-2", 500, 1, "settled")]
    assert "可提现：3.00元" in reply.content and "冻结中：13.00元" in reply.content
    assert (await ask(server, PROMOTER, " 我的佣金 ")).content == reply.content
    assert (await click(server, PROMOTER, "MY_COMMISSION")).content == reply.content

    # 张三丰 earned 20.00 on 王五's order, settled then clawed back: nothing left, and nothing of the promoter's.
    own = (await ask(server, "o_zhang", "佣金")).content
    assert own.splitlines()[1:8] == ["可提现：0.00元", "冻结中：0.00元（结算后可提现）", "提现中：0.00元", "今日收益：0.00元",
                                     "本月收益：0.00元", "最近1笔佣金：", f"· 0.00元｜一级｜已追回｜下单 {china_time(ordered_at['chat-3'])}"]


async def test_the_team_answer_counts_both_levels_and_ranks_direct_members_masked(server):
    team = await promoter_with_money(server)
    me = (await server.http.get("/api/v1/me", headers=auth(team["token"]))).json()
    assert (me["direct_count"], me["team_count"]) == (2, 3)

    reply = await ask(server, PROMOTER, "团队")

    assert reply.content.splitlines() == [
        "【我的团队】", "直属成员：2 人（今日新增 2，本周新增 2）", "团队总人数：3 人（今日新增 3，本周新增 3）",
        "本月直属成员消费前2名：", "1. 张** 150.00元", "2. 李* 30.00元"]  # 王五 bought as 张三丰's, refunded too
    assert (await click(server, PROMOTER, "MY_TEAM")).content == reply.content
    assert (await ask(server, "o_zhang", "我的团队")).content.splitlines()[1:4] == [
        "直属成员：1 人（今日新增 1，本周新增 1）", "团队总人数：1 人（今日新增 1，本周新增 1）", "本月直属成员还没有消费。"]


async def test_the_withdrawal_answer_sends_the_mini_program_card_and_states_the_rules(server, sandbox):
    runtime = server.runtime
    await promoter_with_money(server)
    await runtime.merchant_settings.put(WithdrawalRules(min_fen=100, fee_bp=60, daily_count_cap=2,
                                                        daily_amount_cap_fen=300_000))
    await runtime.merchant_settings.put(ChatSettings(withdraw_page="pages/withdraw/index"))
    sandbox.state.calls.clear()

    reply = await ask(server, PROMOTER, "提现")

    assert reply.content.splitlines() == [
        "【提现】", "可提现：3.00元", "提现规则：单笔最低 1.00元；手续费 0.60%（打款时扣除）；每日最多 2 笔，合计不超过 3000.00元",
        CARD_SENT]
    (sent,) = calls(sandbox, CUSTOM_SEND)
    card = sent.body["miniprogrampage"]
    assert (sent.body["touser"], sent.body["msgtype"]) == (PROMOTER, "miniprogrampage")
    assert (card["appid"], card["pagepath"], card["title"]) == (runtime.settings.miniapp_app_id, "pages/withdraw/index",
                                                                "可提现 3.00元，点此提现")
    assert sandbox.state.media.get(card["thumb_media_id"]).kind == "image"

    assert (await click(server, PROMOTER, "WITHDRAW")).content == reply.content
    assert len(calls(sandbox, CUSTOM_SEND)) == 2 and len(calls(sandbox, "cgi-bin/media/upload")) == 1  # kept

    sandbox.state.faults.add(Fault(CUSTOM_SEND, errcode=45015))  # the 48 hours are over: the link instead
    refused = (await ask(server, PROMOTER, "提现")).content
    assert refused.splitlines()[-1] == (f'<a data-miniprogram-appid="{runtime.settings.miniapp_app_id}" '
                                        'data-miniprogram-path="pages/withdraw/index">点此提现</a>')


async def test_without_a_withdrawal_page_the_answer_links_the_web_page_or_says_where(server, sandbox):
    runtime = server.runtime
    await promoter_with_money(server)
    await runtime.merchant_settings.put(ChatSettings(withdraw_link="https://shop.example.com/withdraw"))
    assert (await ask(server, PROMOTER, "提现")).content.splitlines()[-1] == \
        '<a href="https://shop.example.com/withdraw">点此提现</a>'
    await runtime.merchant_settings.put(ChatSettings())
    assert (await ask(server, PROMOTER, "提现")).content.splitlines()[-1] == NO_WITHDRAW_PAGE
    assert calls(sandbox, CUSTOM_SEND) == []


# --- the others ------------------------------------------------------------------------------------------------


async def test_a_member_who_may_not_promote_is_told_the_way_under_each_rule(server):
    runtime = server.runtime
    await runtime.merchant_settings.put(ChatSettings(apply_page="pages/promoter/apply"))
    newcomer = await add_member(runtime, oa_openid="o_newcomer")
    await runtime.db["buyer_totals"].insert_one({"_id": newcomer["_id"], "order_count": 1, "order_fen": 2_345})
    await add_member(runtime, oa_openid="o_applied", promoter_status=PromoterStatus.PENDING.value)
    await add_member(runtime, oa_openid="o_approved", promoter_status=PromoterStatus.APPROVED.value)
    apply = (f'<a data-miniprogram-appid="{runtime.settings.miniapp_app_id}" '
             f'data-miniprogram-path="pages/promoter/apply">点此申请成为推广员</a>')

    await runtime.merchant_settings.put(BindingSettings(upline_eligibility=UplineEligibility.REVIEWED))
    for asked in ("佣金", "团队", "提现"):
        answer = (await ask(server, "o_newcomer", asked)).content
        assert answer.splitlines() == ["你还不是推广员。申请并通过审核后，即可推广赚佣金。", apply]
    assert "审核中" in (await click(server, "o_applied", "MY_COMMISSION")).content
    assert (await ask(server, "o_approved", "佣金")).content.startswith("【我的佣金】")

    await runtime.merchant_settings.put(BindingSettings(upline_eligibility=UplineEligibility.SPEND_THRESHOLD,
                                                        spend_threshold_fen=9_900))
    assert (await click(server, "o_newcomer", "MY_TEAM")).content == \
        "你还不是推广员。再消费 75.55元 即可成为推广员，推广赚佣金。"

    await runtime.merchant_settings.put(BindingSettings(upline_eligibility=UplineEligibility.APPOINTED))
    neutral = (await ask(server, "o_approved", "提现")).content
    assert neutral == "推广员由商家邀请开通，如有意向请联系商家。"

    # A follower this server had not met yet becomes a member and is answered like any other.
    assert (await ask(server, "o_stranger", "佣金")).content == neutral
    assert await runtime.members.by_oa_openid("o_stranger") is not None


async def test_help_says_what_the_account_does_with_the_merchants_keywords(server):
    runtime = server.runtime
    put = await server.http.put("/api/merchant/v1/settings/chat", headers=MERCHANT, json={
        "commission_keywords": ["收益"], "help_keywords": ["帮助", "?"], "help_intro": "欢迎来到小店推广中心！"})
    assert put.status_code == 200, put.text

    reply = await ask(server, "o_anyone", "?")

    assert reply.content.splitlines() == [
        "【帮助】", "欢迎来到小店推广中心！", "发送下面的关键词，或点击菜单：", "· 收益：查看佣金余额、今日和本月收益、最近的佣金",
        "· 团队 / 我的团队：查看团队人数、新增成员和本月直属成员消费排行", "· 提现：查看可提现金额和提现规则，进入提现页面",
        "· 海报 / 推广海报：生成你的专属推广海报", "· 帮助 / ?：查看本说明"]
    assert (await click(server, "o_anyone", "HELP")).content == reply.content
    assert await runtime.members.by_oa_openid("o_anyone") is None  # help changes nothing
    assert (await ask(server, "o_anyone", "收益")).content.startswith("【我的佣金】")
    assert (await ask(server, "o_anyone", "佣金")).content == runtime.settings.default_reply


# --- retries ---------------------------------------------------------------------------------------------------


async def test_a_retry_of_a_money_answer_repeats_it_byte_for_byte_and_help_claims_nothing(server):
    runtime = server.runtime
    team = await promoter_with_money(server)
    query, body = server.signer.sign(text_xml(PROMOTER, "佣金", msg_id=7_001))
    first = await server.http.post("/wechat", params=query, content=body)

    await order(runtime, "chat-5", team["li"], 1_000)  # 1.00 more frozen meanwhile
    again = await server.http.post("/wechat", params=query, content=body)

    assert again.content == first.content and "冻结中：13.00元" in parsed_reply(again.text).content
    assert "冻结中：14.00元" in (await ask(server, PROMOTER, "佣金")).content  # a new question reads afresh
    assert await runtime.redis.exists(f"{runtime.settings.redis_prefix}push:m:7001")

    query, body = server.signer.sign(text_xml(PROMOTER, "帮助", msg_id=7_002))
    answers = [await server.http.post("/wechat", params=query, content=body) for _ in range(2)]
    assert answers[0].content == answers[1].content and "【帮助】" in answers[0].text
    assert not await runtime.redis.exists(f"{runtime.settings.redis_prefix}push:m:7002")  # never claimed


# --- the merchant's settings -----------------------------------------------------------------------------------


async def test_the_chat_settings_are_served_validated_and_shown_in_the_console(server):
    settings = await server.merchant_get("/api/merchant/v1/settings/chat")
    assert settings.status_code == 200 and settings.json() == ChatSettings().to_dict()
    twice = await server.http.put("/api/merchant/v1/settings/chat", headers=MERCHANT,
                                  json={"team_keywords": ["团队", "佣金"]})
    assert twice.status_code == 400 and twice.json()["error"]["field"] == "team_keywords[1]"

    owner = await staff_client(server, "owner")
    page = await owner.get("/admin/settings/chat")
    assert page.status_code == 200
    for field in ChatSettings.model_fields:
        assert f'name="{field}"' in page.text
    saved = await owner.post("/admin/settings/chat", {"commission_keywords": "佣金, 收益", "team_keywords": "团队",
                                                       "withdraw_keywords": "提现", "help_keywords": "帮助",
                                                       "withdraw_page": "pages/withdraw/index"})
    assert saved.status_code == 303, saved.text
    stored = (await server.merchant_get("/api/merchant/v1/settings/chat")).json()
    assert (stored["commission_keywords"], stored["withdraw_page"]) == (["佣金", "收益"], "pages/withdraw/index")
