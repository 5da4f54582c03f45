"""The chat's keywords, who may promote and how the others may become promoters, and the answers' words: to the
fen, masked as the mini-program masks, within WeChat's reply size."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from distribution.binding import BindingSettings, MemberSnapshot, PromoterStatus, UplineEligibility
from distribution.chat import (
    CARD_SENT,
    HELP,
    MAX_HELP_INTRO_LENGTH,
    MENU_KEYS,
    MY_COMMISSION,
    MY_TEAM,
    NEWCOMERS_COUNTED,
    REPLY_BYTES,
    WITHDRAW,
    ChatSettings,
    CommissionSummary,
    PathKind,
    Periods,
    PromoterPath,
    RecentCommission,
    TeamSummary,
    Topic,
    TopMember,
    commission_answer,
    fitted,
    help_answer,
    joined_since,
    link,
    path_answer,
    path_to_promote,
    team_answer,
    withdraw_answer,
)
from distribution.poster_settings import MAX_KEYWORD_LENGTH, MAX_KEYWORDS
from distribution.records import InvalidField
from distribution.withdrawals import WithdrawalRules

NOW = datetime(2026, 5, 14, 2, 30, tzinfo=timezone.utc)  # Thursday 10:30 in China
APP_ID = "wxsandboxminiapp0"


def member(**fields) -> MemberSnapshot:
    return MemberSnapshot(id="m", created_at=NOW - timedelta(days=3), **fields)


# --- the keywords ----------------------------------------------------------------------------------------------


def test_the_default_keywords_and_menu_keys_ask_each_question():
    settings = ChatSettings()
    assert [settings.topic_of(text) for text in ("佣金", " 我的佣金 ", "团队", "我的团队", "提现", "帮助", "海报", "",
                                                  None)] == \
        [Topic.COMMISSION, Topic.COMMISSION, Topic.TEAM, Topic.TEAM, Topic.WITHDRAW, Topic.HELP, None, None, None]
    assert MENU_KEYS == {Topic.COMMISSION: MY_COMMISSION, Topic.TEAM: MY_TEAM, Topic.WITHDRAW: WITHDRAW,
                         Topic.HELP: HELP}


def test_the_merchants_keywords_are_compared_trimmed_and_ignoring_case():
    settings = ChatSettings(commission_keywords=["Money", "收益"], help_keywords=["?"])
    assert settings.topic_of("  money ") is Topic.COMMISSION and settings.topic_of("收益") is Topic.COMMISSION
    assert settings.topic_of("佣金") is None and settings.topic_of("?") is Topic.HELP
    assert ChatSettings.from_dict(settings.to_dict()) == settings


@pytest.mark.parametrize("values, field", [
    ({"team_keywords": ["佣金"]}, "team_keywords[0]"),  # also asks for the commission
    ({"withdraw_keywords": ["提现", " 提现"]}, "withdraw_keywords[1]"),
    ({"help_keywords": ["Help", "help"]}, "help_keywords[1]"),
    ({"help_keywords": ["x" * (MAX_KEYWORD_LENGTH + 1)]}, "help_keywords[0]"),
    ({"help_keywords": [f"h{index}" for index in range(MAX_KEYWORDS + 1)]}, "help_keywords"),
    ({"help_keywords": [" "]}, "help_keywords[0]"),
    ({"help_intro": "x" * (MAX_HELP_INTRO_LENGTH + 1)}, "help_intro"),
    ({"help_intro": "tab\there"}, "help_intro"),
    ({"withdraw_page": "/pages/withdraw/index"}, "withdraw_page"),
    ({"withdraw_link": "javascript:alert(1)"}, "withdraw_link"),
    ({"apply_link": 'https://shop.example.com/" onclick="x'}, "apply_link"),
])
def test_keywords_that_ask_twice_and_bad_pages_are_refused_naming_the_field(values, field):
    with pytest.raises(InvalidField) as refused:
        ChatSettings.from_dict(values)
    assert refused.value.field == field


def test_every_keyword_may_be_cleared_the_menu_still_asks():
    settings = ChatSettings(commission_keywords=[], team_keywords=[], withdraw_keywords=[], help_keywords=[])
    assert settings.topic_of("佣金") is None
    assert "佣金" not in help_answer(settings, ())


# --- who may promote, and the way for the others ----------------------------------------------------------------


@pytest.mark.parametrize("eligibility, fields, expected", [
    (UplineEligibility.EVERYONE, {}, None),
    (UplineEligibility.EVERYONE, {"frozen": True}, PromoterPath(PathKind.SUSPENDED)),
    (UplineEligibility.REVIEWED, {}, PromoterPath(PathKind.APPLY)),
    (UplineEligibility.REVIEWED, {"promoter_status": PromoterStatus.PENDING}, PromoterPath(PathKind.UNDER_REVIEW)),
    (UplineEligibility.REVIEWED, {"promoter_status": PromoterStatus.REJECTED}, PromoterPath(PathKind.REAPPLY)),
    (UplineEligibility.REVIEWED, {"promoter_status": PromoterStatus.APPROVED}, None),
    (UplineEligibility.SPEND_THRESHOLD, {"spent_fen": 2_345}, PromoterPath(PathKind.SPEND_MORE, 7_555)),
    (UplineEligibility.SPEND_THRESHOLD, {"spent_fen": 9_900}, None),
    (UplineEligibility.APPOINTED, {"promoter_status": PromoterStatus.APPROVED}, PromoterPath(PathKind.APPOINTED_ONLY)),
    (UplineEligibility.APPOINTED, {"promoter_status": PromoterStatus.APPOINTED}, None),
])
def test_the_path_to_promote_follows_the_eligibility_rule(eligibility, fields, expected):
    binding = BindingSettings(upline_eligibility=eligibility, spend_threshold_fen=9_900)
    assert path_to_promote(member(**fields), binding) == expected


def test_each_path_is_told_in_words_with_the_application_link():
    apply = link("点此申请", "pages/apply/index", "https://shop.example.com/apply", APP_ID)
    assert apply == ('<a data-miniprogram-appid="wxsandboxminiapp0" data-miniprogram-path="pages/apply/index" '
                     'href="https://shop.example.com/apply">点此申请</a>')
    assert link("点此申请", None, "https://shop.example.com/apply", APP_ID) == \
        '<a href="https://shop.example.com/apply">点此申请</a>'
    assert link("点此申请", None, None, APP_ID) is None
    assert apply in path_answer(PromoterPath(PathKind.APPLY), apply)
    assert apply in path_answer(PromoterPath(PathKind.REAPPLY), apply)
    assert "请在商城小程序中申请" in path_answer(PromoterPath(PathKind.APPLY), None)
    assert "审核中" in path_answer(PromoterPath(PathKind.UNDER_REVIEW), apply)
    assert "再消费 75.55元" in path_answer(PromoterPath(PathKind.SPEND_MORE, 7_555), apply)
    neutral = path_answer(PromoterPath(PathKind.APPOINTED_ONLY), apply)
    assert "联系商家" in neutral and "<a" not in neutral


# --- the answers -----------------------------------------------------------------------------------------------


def test_periods_begin_at_midnight_in_china_on_monday_and_the_first():
    china = timezone(timedelta(hours=8))
    periods = Periods.at(NOW)
    assert periods.today == datetime(2026, 5, 14, tzinfo=china)
    assert periods.week == datetime(2026, 5, 11, tzinfo=china)  # Monday
    assert periods.month == datetime(2026, 5, 1, tzinfo=china)
    late = Periods.at(datetime(2026, 5, 31, 16, 0, tzinfo=timezone.utc))  # already 1 June in China
    assert (late.today, late.month) == (datetime(2026, 6, 1, tzinfo=china), datetime(2026, 6, 1, tzinfo=china))


def test_the_commission_answer_to_the_fen():
    latest = (RecentCommission(300, 1, "frozen", NOW), RecentCommission(0, 2, "clawed_back", NOW - timedelta(days=1)),
              RecentCommission(1_005, 1, "settled", NOW - timedelta(days=2)))
    text = commission_answer(CommissionSummary(frozen_fen=1_300, available_fen=-15, locked_fen=200, today_fen=300,
                                               month_fen=123_456, latest=latest))
    assert text.splitlines() == [
        "【我的佣金】", "可提现：-0.15元", "冻结中：13.00元（结算后可提现）", "提现中：2.00元",
        "（已结算的佣金因退款被追回，之后结算的佣金会先抵扣）", "今日收益：3.00元", "本月收益：1234.56元", "最近3笔佣金：",
        "· 3.00元｜一级｜冻结中｜下单 2026-05-14 10:30", "· 0.00元｜二级｜已追回｜下单 2026-05-13 10:30",
        "· 10.05元｜一级｜已结算｜下单 2026-05-12 10:30"]
    empty = commission_answer(CommissionSummary(0, 0, 0, 0, 0, ()))
    assert "可提现：0.00元" in empty and "还没有佣金" in empty


def test_the_team_answer_masks_names_as_the_mini_program_does():
    text = team_answer(TeamSummary(direct_count=2, team_count=3, direct_today=1, direct_this_week=2, team_today=1,
                                   team_this_week=NEWCOMERS_COUNTED + 1,
                                   top=(TopMember("张三丰", 15_000), TopMember("Li", 3_000), TopMember(None, 1))))
    assert text.splitlines() == [
        "【我的团队】", "直属成员：2 人（今日新增 1，本周新增 2）", f"团队总人数：3 人（今日新增 1，本周新增 {NEWCOMERS_COUNTED}+）",
        "本月直属成员消费前3名：", "1. 张** 150.00元", "2. L* 30.00元", "3. * 0.01元"]
    assert "还没有消费" in team_answer(TeamSummary(0, 0, 0, 0, 0, 0, ()))


def test_newcomers_are_those_joined_since_the_start():
    start = Periods.at(NOW).today
    assert joined_since([start, start - timedelta(seconds=1), None, NOW], start) == 2


def test_the_withdrawal_answer_states_the_rules_that_apply():
    rules = WithdrawalRules(min_fen=1_000, fee_bp=60, daily_count_cap=2, daily_amount_cap_fen=300_000)
    text = withdraw_answer(12_345, rules, CARD_SENT)
    assert text.splitlines() == ["【提现】", "可提现：123.45元",
                                 "提现规则：单笔最低 10.00元；手续费 0.60%（打款时扣除）；每日最多 2 笔，合计不超过 3000.00元",
                                 CARD_SENT]
    below = withdraw_answer(999, WithdrawalRules(min_fen=1_000), "x")
    assert "免手续费" in below and "满 10.00元 即可申请提现" in below


def test_help_lists_each_question_with_its_keywords_and_the_merchants_words():
    settings = ChatSettings(help_intro="欢迎来到小店！\n有问题随时问", team_keywords=["团队"])
    text = help_answer(settings, ("海报", "邀请码"))
    assert text.splitlines() == [
        "【帮助】", "欢迎来到小店！", "有问题随时问", "发送下面的关键词，或点击菜单：",
        "· 佣金 / 我的佣金：查看佣金余额、今日和本月收益、最近的佣金", "· 团队：查看团队人数、新增成员和本月直属成员消费排行",
        "· 提现：查看可提现金额和提现规则，进入提现页面", "· 海报 / 邀请码：生成你的专属推广海报", "· 帮助：查看本说明"]


def test_every_answer_fits_a_wechat_text_reply():
    longest = [str(index) + "字" * (MAX_KEYWORD_LENGTH - 2) for index in range(MAX_KEYWORDS)]
    settings = ChatSettings.from_dict({
        f"{topic}_keywords": [f"{topic[0]}{keyword}" for keyword in longest]
        for topic in ("commission", "team", "withdraw", "help")} | {"help_intro": "字" * MAX_HELP_INTRO_LENGTH})
    text = help_answer(settings, [f"p{keyword}" for keyword in longest])
    assert REPLY_BYTES - 3 < len(text.encode()) <= REPLY_BYTES and text.endswith("…")
    assert fitted("字" * 683) == "字" * 681 + "…"  # 2049 bytes: the whole characters that fit beside "…"
    assert fitted("ok") == "ok"
    assert fitted("a]]>b") == "a]] >b"  # would end the reply's CDATA section


def test_the_documented_example_and_the_defaults_round_trip():
    for example in ChatSettings.model_json_schema()["examples"]:
        value = ChatSettings.from_dict(example)
        assert value.to_dict() == example and ChatSettings.from_dict(value.to_dict()) == value
    assert ChatSettings.from_dict(ChatSettings().to_dict()) == ChatSettings() == ChatSettings.from_dict({})
