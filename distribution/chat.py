"""The promoter's conversation with the official account: the questions a promoter may ask, by keyword or by menu
key, and the words of each answer.

Pure: `ChatSettings` is a `Record` read and replaced through `GET|PUT /api/merchant/v1/settings/chat` (the words
that ask each question, the help's opening words, the pages the answers open); `services.chat` gathers a member's
figures and the functions here put them in words. A text WeChat takes as a reply or a customer-service message is
at most `REPLY_BYTES` of UTF-8: every answer is cut to fit (`fitted`).

A promoter who may not promote (yet) is told how to become one instead of being shown figures
(`path_to_promote`): apply where the merchant reviews promoters, the spending still missing under a threshold,
or a neutral word where the merchant appoints them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Self

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from distribution.binding import BindingSettings, MemberSnapshot, PromoterStatus, UplineEligibility, may_be_upline
from distribution.calendar import CHINA, china_time
from distribution.chain_move import RewardKind
from distribution.money import percent, yuan
from distribution.names import mask_name
from distribution.poster_settings import MAX_KEYWORDS, Keyword, MiniappPage, normalised_keyword
from distribution.records import InvalidField, Record, Text, matching
from distribution.withdrawals import WithdrawalRules

# The menu's click keys the conversation answers (`distribution.oa_menu` lets a button send only these).
MY_COMMISSION = "MY_COMMISSION"
MY_TEAM = "MY_TEAM"
WITHDRAW = "WITHDRAW"
HELP = "HELP"
POSTER = "POSTER"

REPLY_BYTES = 2048  # WeChat's limit on a text reply's content, and on a customer-service text
MAX_HELP_INTRO_LENGTH = 200
MAX_LINK_LENGTH = 1000
NEWCOMERS_COUNTED = 100  # new members are counted on the newest this many; beyond, "100+"
TOP_DIRECT_MEMBERS = 3
LATEST_COMMISSIONS = 3


class Topic(StrEnum):
    """What a promoter may ask about."""

    COMMISSION = "commission"
    TEAM = "team"
    WITHDRAW = "withdraw"
    HELP = "help"


MENU_KEYS: dict[Topic, str] = {Topic.COMMISSION: MY_COMMISSION, Topic.TEAM: MY_TEAM, Topic.WITHDRAW: WITHDRAW,
                               Topic.HELP: HELP}
_KEYWORD_FIELDS = {Topic.COMMISSION: "commission_keywords", Topic.TEAM: "team_keywords",
                   Topic.WITHDRAW: "withdraw_keywords", Topic.HELP: "help_keywords"}

Keywords = Annotated[tuple[Keyword, ...], Field(max_length=MAX_KEYWORDS)]
HelpIntro = Annotated[Text, StringConstraints(max_length=MAX_HELP_INTRO_LENGTH), matching(
    r"^[^\x00-\x09\x0b-\x1f]*$", "must not contain control characters (a line break is allowed)",
)]
# Put inside an <a href="..."> of a chat message: no quotes, brackets or spaces.
WebLink = Annotated[Text, StringConstraints(max_length=MAX_LINK_LENGTH), matching(
    r'^https?://[^\s"<>]+$', "must be an http:// or https:// address without spaces, quotes or angle brackets",
)]


class ChatSettings(Record):
    """The words promoters send the official account to ask each question, the help's opening words, and the
    mini-program pages (or web pages) the answers open."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "commission_keywords": ["佣金", "我的佣金", "收益"], "team_keywords": ["团队", "我的团队"],
        "withdraw_keywords": ["提现"], "help_keywords": ["帮助", "?"], "help_intro": "欢迎来到小店推广中心！",
        "withdraw_page": "pages/withdraw/index", "withdraw_link": None,
        "apply_page": "pages/promoter/apply", "apply_link": "https://shop.example.com/promoter/apply",
    }]})

    commission_keywords: Keywords = Field(
        ("佣金", "我的佣金"), description="Messages that ask for my balances, earnings and latest commissions "
                                        "(the menu key MY_COMMISSION asks too), compared trimmed and ignoring case.")
    team_keywords: Keywords = Field(
        ("团队", "我的团队"), description="Messages that ask for my team's size, newcomers and best direct members "
                                        "(menu key MY_TEAM).")
    withdraw_keywords: Keywords = Field(
        ("提现",), description="Messages that ask what I may withdraw, on what rules, and open the withdrawal page "
                             "(menu key WITHDRAW).")
    help_keywords: Keywords = Field(
        ("帮助",), description="Messages that ask what the account can do (menu key HELP).")
    help_intro: HelpIntro | None = Field(
        None, description="The merchant's own words at the top of the help. null: none.")
    withdraw_page: MiniappPage | None = Field(
        None, description="The mini-program's withdrawal page, such as pages/withdraw/index: the withdrawal answer "
                          "sends a mini-program card opening it. null: the answer links withdraw_link instead.")
    withdraw_link: WebLink | None = Field(
        None, description="A web page to withdraw on, linked when there is no withdraw_page (and opened by WeChat "
                          "versions without mini-programs).")
    apply_page: MiniappPage | None = Field(
        None, description="The mini-program's page to apply to promote on (where the merchant reviews promoters): "
                          "members who may not promote yet are linked to it.")
    apply_link: WebLink | None = Field(
        None, description="A web page to apply on, linked when there is no apply_page (and opened by WeChat versions "
                          "without mini-programs).")

    @model_validator(mode="after")
    def _each_keyword_asks_one_question(self) -> Self:
        asked_in: dict[str, str] = {}
        for field in _KEYWORD_FIELDS.values():
            for index, keyword in enumerate(getattr(self, field)):
                folded = normalised_keyword(keyword)
                if folded in asked_in:
                    also = "" if asked_in[folded] == field else f" (also in {asked_in[folded]})"
                    raise InvalidField(f"{field}[{index}]", f"{keyword!r} is listed twice{also}")
                asked_in[folded] = field
        return self

    def keywords_of(self, topic: Topic) -> tuple[str, ...]:
        return getattr(self, _KEYWORD_FIELDS[topic])

    def topic_of(self, text: str | None) -> Topic | None:
        """The question a chat message asks, if it is one of the keywords."""
        if not text:
            return None
        return self.topic_by_keyword.get(normalised_keyword(text))

    @cached_property
    def topic_by_keyword(self) -> dict[str, Topic]:
        # Folded once per settings value: every chat message of every push is compared with them.
        return {normalised_keyword(keyword): topic for topic in Topic for keyword in self.keywords_of(topic)}


def fitted(text: str, limit: int = REPLY_BYTES) -> str:
    """`text` cut to at most `limit` bytes of UTF-8, at a character, ending in "…" when cut; a "]]>" in the
    merchant's words, which would end the XML reply's CDATA section, is broken up."""
    text = text.replace("]]>", "]] >")
    if len(text.encode()) <= limit:
        return text
    room = limit - len("…".encode())
    return text.encode()[:room].decode(errors="ignore") + "…"


def link(words: str, page: str | None, web_link: str | None, miniapp_app_id: str) -> str | None:
    """A link a chat message carries: to a mini-program page when there is one (WeChat versions without
    mini-programs open `web_link`), else to `web_link`; None when there is neither."""
    href = f' href="{web_link}"' if web_link else ""
    if page:
        return f'<a data-miniprogram-appid="{miniapp_app_id}" data-miniprogram-path="{page}"{href}>{words}</a>'
    return f"<a{href}>{words}</a>" if web_link else None


# --- who may promote -------------------------------------------------------------------------------------------


class PathKind(StrEnum):
    APPLY = "apply"  # the merchant reviews promoters: apply
    UNDER_REVIEW = "under_review"  # applied: wait
    REAPPLY = "reapply"  # refused: may apply again
    SPEND_MORE = "spend_more"  # spending qualifies: this much more
    APPOINTED_ONLY = "appointed_only"  # the merchant appoints promoters: nothing to do but ask
    SUSPENDED = "suspended"  # frozen by the merchant


@dataclass(frozen=True)
class PromoterPath:
    kind: PathKind
    left_fen: int = 0  # SPEND_MORE: what is still to be spent


def path_to_promote(member: MemberSnapshot, binding: BindingSettings) -> PromoterPath | None:
    """How `member` may become a promoter under the merchant's rules; None when they are one."""
    if member.frozen:
        return PromoterPath(PathKind.SUSPENDED)
    if may_be_upline(member, binding):
        return None
    match binding.upline_eligibility:
        case UplineEligibility.REVIEWED if member.promoter_status is PromoterStatus.PENDING:
            return PromoterPath(PathKind.UNDER_REVIEW)
        case UplineEligibility.REVIEWED if member.promoter_status is PromoterStatus.REJECTED:
            return PromoterPath(PathKind.REAPPLY)
        case UplineEligibility.REVIEWED:
            return PromoterPath(PathKind.APPLY)
        case UplineEligibility.SPEND_THRESHOLD:
            return PromoterPath(PathKind.SPEND_MORE, binding.spend_threshold_fen - member.spent_fen)
    return PromoterPath(PathKind.APPOINTED_ONLY)


def path_answer(path: PromoterPath, apply_link: str | None) -> str:
    """What a member who may not promote is told instead of figures; `apply_link` from `link`."""
    apply = apply_link or "请在商城小程序中申请。"
    match path.kind:
        case PathKind.APPLY:
            text = f"你还不是推广员。申请并通过审核后，即可推广赚佣金。\n{apply}"
        case PathKind.REAPPLY:
            text = f"你的推广员申请未通过，可以重新申请。\n{apply}"
        case PathKind.UNDER_REVIEW:
            text = "你的推广员申请正在审核中，审核通过后会通知你。"
        case PathKind.SPEND_MORE:
            text = f"你还不是推广员。再消费 {yuan(path.left_fen)} 即可成为推广员，推广赚佣金。"
        case PathKind.SUSPENDED:
            text = "你的推广员资格已暂停，如有疑问请联系商家。"
        case _:
            text = "推广员由商家邀请开通，如有意向请联系商家。"
    return fitted(text)


APPLY_LINK_WORDS = "点此申请成为推广员"


# --- the answers -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Periods:
    """When today, this week (from Monday) and this month began, in China, as of a moment."""

    today: datetime
    week: datetime
    month: datetime

    @classmethod
    def at(cls, now: datetime) -> Periods:
        day = now.astimezone(CHINA).date()
        midnight = datetime.combine(day, time.min, CHINA)
        return cls(today=midnight, week=midnight - timedelta(days=day.weekday()),
                   month=midnight - timedelta(days=day.day - 1))


STATUS_WORDS = {"frozen": "冻结中", "settled": "已结算", "cancelled": "已退款取消", "clawed_back": "已追回"}


@dataclass(frozen=True)
class RecentCommission:
    net_fen: int  # what is left of it after refunds
    level: int
    status: str  # as stored: frozen, settled, cancelled or clawed_back
    ordered_at: datetime
    reward: str | None = None  # the chain-move mode's kind of reward (direct, team or peer); None in the level mode


@dataclass(frozen=True)
class CommissionSummary:
    frozen_fen: int
    available_fen: int
    locked_fen: int
    today_fen: int  # commissions posted today less those refunds reversed today
    month_fen: int  # likewise this month
    latest: tuple[RecentCommission, ...]


def commission_answer(summary: CommissionSummary) -> str:
    lines = ["【我的佣金】",
             f"可提现：{yuan(summary.available_fen)}",
             f"冻结中：{yuan(summary.frozen_fen)}（结算后可提现）",
             f"提现中：{yuan(summary.locked_fen)}"]
    if summary.available_fen < 0:
        lines.append("（已结算的佣金因退款被追回，之后结算的佣金会先抵扣）")
    lines += [f"今日收益：{yuan(summary.today_fen)}", f"本月收益：{yuan(summary.month_fen)}"]
    if summary.latest:
        lines.append(f"最近{len(summary.latest)}笔佣金：")
        lines += [f"· {yuan(each.net_fen)}｜{level_words(each.level, each.reward)}｜"
                  f"{STATUS_WORDS.get(each.status, each.status)}｜下单 {china_time(each.ordered_at)}"
                  for each in summary.latest]
    else:
        lines.append("还没有佣金，分享推广海报邀请好友下单吧。")
    return fitted("\n".join(lines))


def level_words(level: int, reward: str | None = None) -> str:
    """How a commission's level reads; a chain-move reward's level is its kind (`reward`), not a place up a chain."""
    if reward is not None:
        return RewardKind.of_key(reward).words
    return {1: "一级", 2: "二级", 3: "三级"}.get(level, f"{level}级")


@dataclass(frozen=True)
class TopMember:
    nickname: str | None
    spent_fen: int


@dataclass(frozen=True)
class TeamSummary:
    direct_count: int
    team_count: int
    direct_today: int  # each counted up to NEWCOMERS_COUNTED + 1: more shows as "100+"
    direct_this_week: int
    team_today: int
    team_this_week: int
    top: tuple[TopMember, ...]  # direct members by what they paid this month, most first


def joined_since(joined: Iterable[datetime | None], since: datetime) -> int:
    """How many of the newest members' join times are at `since` or later."""
    return sum(1 for at in joined if at is not None and at >= since)


def headcount(counted: int) -> str:
    return f"{NEWCOMERS_COUNTED}+" if counted > NEWCOMERS_COUNTED else str(counted)


def team_answer(summary: TeamSummary) -> str:
    lines = ["【我的团队】",
             f"直属成员：{summary.direct_count} 人（今日新增 {headcount(summary.direct_today)}，"
             f"本周新增 {headcount(summary.direct_this_week)}）",
             f"团队总人数：{summary.team_count} 人（今日新增 {headcount(summary.team_today)}，"
             f"本周新增 {headcount(summary.team_this_week)}）"]
    if summary.top:
        lines.append(f"本月直属成员消费前{len(summary.top)}名：")
        lines += [f"{rank}. {mask_name(each.nickname)} {yuan(each.spent_fen)}"
                  for rank, each in enumerate(summary.top, start=1)]
    else:
        lines.append("本月直属成员还没有消费。")
    return fitted("\n".join(lines))


def withdraw_rules_words(rules: WithdrawalRules) -> str:
    fee = f"手续费 {percent(rules.fee_bp)}（打款时扣除）" if rules.fee_bp else "免手续费"
    return (f"单笔最低 {yuan(rules.min_fen)}；{fee}；每日最多 {rules.daily_count_cap} 笔，"
            f"合计不超过 {yuan(rules.daily_amount_cap_fen)}")


CARD_SENT = "点击小程序卡片进入提现页面。"
NO_WITHDRAW_PAGE = "请在商城小程序中提现。"


def withdraw_answer(available_fen: int, rules: WithdrawalRules, opens: str) -> str:
    """`opens`: how to reach the withdrawal page (`CARD_SENT`, a `link`, or `NO_WITHDRAW_PAGE`)."""
    lines = ["【提现】", f"可提现：{yuan(available_fen)}", f"提现规则：{withdraw_rules_words(rules)}"]
    if available_fen < rules.min_fen:
        lines.append(f"可提现金额满 {yuan(rules.min_fen)} 即可申请提现。")
    lines.append(opens)
    return fitted("\n".join(lines))


def withdraw_card_title(available_fen: int) -> str:
    return f"可提现 {yuan(available_fen)}，点此提现"


POSTER_HELP = "生成你的专属推广海报"


def help_answer(settings: ChatSettings, poster_keywords: Sequence[str]) -> str:
    """What the account can do, each with the merchant's words that ask for it (the menu asks too)."""
    offered = [(settings.commission_keywords, "查看佣金余额、今日和本月收益、最近的佣金"),
               (settings.team_keywords, "查看团队人数、新增成员和本月直属成员消费排行"),
               (settings.withdraw_keywords, "查看可提现金额和提现规则，进入提现页面"),
               (tuple(poster_keywords), POSTER_HELP),
               (settings.help_keywords, "查看本说明")]
    lines = ["【帮助】", *([settings.help_intro] if settings.help_intro else []), "发送下面的关键词，或点击菜单："]
    lines += [f"· {' / '.join(keywords)}：{words}" for keywords, words in offered if keywords]
    return fitted("\n".join(lines))
