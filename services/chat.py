"""The promoter's answers in chat: their commission, their team, what they may withdraw, and what the account can do.

Each answer reads what the mini-program and the merchant read, through the same services: balances from the
ledger (as `/api/v1/me`), the latest commissions as the commission lists page them, earnings from the promoter's
daily counters (commission posted less commission reversed, as the dashboard ranks promoters), newcomers from
the newest page of the team, the best direct members from their paid orders this month, the withdrawal rules
from the merchant's settings. The words are the domain's (`distribution.chat`).

The withdrawal answer also sends, by customer-service message, a mini-program card that opens the withdrawal
page (WeChat's passive replies carry no such card); its picture is uploaded once and its `media_id` reused
while WeChat keeps it. A card that cannot be sent in `CARD_SECONDS` leaves a link in the answer instead.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from redis.asyncio import Redis

from distribution.binding import BindingSettings
from distribution.calendar import china_day
from distribution.chat import (
    APPLY_LINK_WORDS,
    CARD_SENT,
    LATEST_COMMISSIONS,
    NEWCOMERS_COUNTED,
    NO_WITHDRAW_PAGE,
    TOP_DIRECT_MEMBERS,
    ChatSettings,
    CommissionSummary,
    Periods,
    RecentCommission,
    TeamSummary,
    Topic,
    TopMember,
    commission_answer,
    help_answer,
    joined_since,
    link,
    path_answer,
    path_to_promote,
    team_answer,
    withdraw_answer,
    withdraw_card_title,
)
from distribution.poster_settings import PosterSettings
from distribution.withdrawals import WithdrawalRules
from posters.card import card_picture
from services.commissions import CommissionService, remaining_fen
from services.ledger import LedgerService
from services.members import MemberService
from services.merchant_settings import MerchantSettings
from services.posters import INVALID_MEDIA_ID, MEDIA_REUSE
from stores.orders import OrderStore
from stores.stats import StatsStore
from wechat import WeChatClient, WeChatError

log = logging.getLogger(__name__)

CARD_SECONDS = 2.0  # of the 4 s an answer has: the card waits no longer, the answer links the page instead
WITHDRAW_LINK_WORDS = "点此提现"


class ChatService:
    def __init__(self, merchant_settings: MerchantSettings, members: MemberService, ledger: LedgerService,
                 commissions: CommissionService, orders: OrderStore, stats: StatsStore, oa: WeChatClient,
                 redis: Redis, key_prefix: str, miniapp_app_id: str):
        self.merchant_settings = merchant_settings
        self.members = members
        self.ledger = ledger
        self.commissions = commissions
        self.orders = orders
        self.stats = stats
        self.oa = oa
        self.redis = redis
        self.card_picture_key = f"{key_prefix}chat:card-picture"
        self.miniapp_app_id = miniapp_app_id

    async def topic_of(self, text: str) -> Topic | None:
        return (await self.merchant_settings.get(ChatSettings)).topic_of(text)

    async def help(self) -> str:
        settings = await self.merchant_settings.get(ChatSettings)
        return help_answer(settings, (await self.merchant_settings.get(PosterSettings)).keywords)

    async def answer(self, topic: Topic, member: dict, openid: str, now: datetime) -> str:
        """What `member` (who wrote from `openid`) is told about `topic` as of `now`: their figures, or how to become
        a promoter when they are not one."""
        if topic is Topic.HELP:
            return await self.help()
        binding = await self.merchant_settings.get(BindingSettings)
        path = path_to_promote(await self.members.candidate(member, binding), binding)
        if path is not None:
            settings = await self.merchant_settings.get(ChatSettings)
            return path_answer(path, link(APPLY_LINK_WORDS, settings.apply_page, settings.apply_link,
                                          self.miniapp_app_id))
        if topic is Topic.COMMISSION:
            return commission_answer(await self.commission_summary(member["_id"], now))
        if topic is Topic.TEAM:
            return team_answer(await self.team_summary(member, now))
        return await self.withdrawal(member["_id"], openid)

    async def commission_summary(self, member_id: str, now: datetime) -> CommissionSummary:
        periods = Periods.at(now)
        balances, days, latest = await asyncio.gather(
            self.ledger.balances(member_id),
            self.stats.days(member_id, china_day(periods.month), china_day(now)),
            self.commissions.page(member_id, None, None, LATEST_COMMISSIONS, None, now))
        orders = await self.orders.several(sorted({commission["order_no"] for commission in latest}))

        def earned(counters: dict[str, int]) -> int:
            return counters["commission_fen"] - counters["commission_reversed_fen"]

        today = days.get(china_day(now))
        return CommissionSummary(
            frozen_fen=balances["frozen_fen"], available_fen=balances["available_fen"],
            locked_fen=balances["locked_fen"], today_fen=earned(today) if today else 0,
            month_fen=sum(earned(counters) for counters in days.values()),
            latest=tuple(RecentCommission(net_fen=remaining_fen(commission), level=commission["level"],
                                          reward=commission.get("reward"),
                                          status=commission["status"],
                                          ordered_at=orders.get(commission["order_no"], commission)["created_at"])
                         for commission in latest))

    async def team_summary(self, member: dict, now: datetime) -> TeamSummary:
        periods = Periods.at(now)
        direct, whole, best = await asyncio.gather(
            self.members.team_page(member, 1, NEWCOMERS_COUNTED + 1, None),
            self.members.team_page(member, None, NEWCOMERS_COUNTED + 1, None),
            self.orders.best_direct_buyers(member["_id"], periods.month, TOP_DIRECT_MEMBERS))
        names = await self.members.several(buyer_id for buyer_id, _ in best)
        direct_joined = [each.get("bound_at") for each in direct]
        team_joined = [each.get("bound_at") for each in whole]
        return TeamSummary(
            direct_count=int(member.get("direct_count", 0)), team_count=int(member.get("team_count", 0)),
            direct_today=joined_since(direct_joined, periods.today),
            direct_this_week=joined_since(direct_joined, periods.week),
            team_today=joined_since(team_joined, periods.today), team_this_week=joined_since(team_joined, periods.week),
            top=tuple(TopMember(names.get(buyer_id, {}).get("nickname"), fen) for buyer_id, fen in best))

    async def withdrawal(self, member_id: str, openid: str) -> str:
        """What the member may withdraw and on what rules; with a mini-program withdrawal page, its card is sent."""
        settings = await self.merchant_settings.get(ChatSettings)
        rules = await self.merchant_settings.get(WithdrawalRules)
        available_fen = (await self.ledger.balances(member_id))["available_fen"]
        opens = link(WITHDRAW_LINK_WORDS, settings.withdraw_page, settings.withdraw_link, self.miniapp_app_id)
        if settings.withdraw_page and await self._send_card(openid, settings.withdraw_page, available_fen):
            opens = CARD_SENT
        return withdraw_answer(available_fen, rules, opens or NO_WITHDRAW_PAGE)

    async def _send_card(self, openid: str, page: str, available_fen: int) -> bool:
        """Whether the card went out within `CARD_SECONDS`."""
        try:
            async with asyncio.timeout(CARD_SECONDS):
                for fresh_picture in (False, True):
                    card = {"title": withdraw_card_title(available_fen), "appid": self.miniapp_app_id,
                            "pagepath": page, "thumb_media_id": await self._card_picture_media(fresh_picture)}
                    try:
                        await self.oa.message.send_custom(openid, "miniprogrampage", card)
                        return True
                    except WeChatError as error:
                        if error.errcode != INVALID_MEDIA_ID or fresh_picture:
                            raise
        except (WeChatError, TimeoutError) as error:
            log.warning("the withdrawal card was not sent (%s): the answer links the page", error)
        return False

    async def _card_picture_media(self, fresh: bool) -> str:
        """The card picture's `media_id`: kept while WeChat keeps the upload, uploaded again when `fresh` (WeChat
        lost it before then)."""
        if not fresh and (kept := await self.redis.get(self.card_picture_key)) is not None:
            return kept.decode()
        picture = await asyncio.to_thread(card_picture)
        media_id = (await self.oa.media.upload("image", "withdraw-card.jpg", picture))["media_id"]
        await self.redis.set(self.card_picture_key, media_id, ex=int(MEDIA_REUSE.total_seconds()))
        return media_id
