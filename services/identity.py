"""One member per person across the official account and the mini-program.

WeChat names a person by a different openid in each app, and by one unionid
across the apps of one open-platform account. The mini-program's login
returns the unionid at once; the official account's is asked for by the
worker after a follow (`user/info`). A follower not asked for within
`UNIONID_SWEEP_AFTER` (the job was lost) is asked for again by a sweep.

- Mini-program login: the member with this mini-program openid; else the
  member holding the unionid (the official-account member: both openids
  now); else a new member.
- When the official account learns a unionid that a mini-program member
  already holds, both members already exist. If one of them is bare (no
  upline, no team, no order ever paid, never both identities) it is folded into
  the other: its openid moves over and the bare document is kept with
  `merged_into` so that nothing that refers to it is left dangling. When
  both have relations or money, neither is changed: the official-account
  member gets `unionid_conflict` naming the other, for the merchant to look
  at — two histories are never merged by guesswork.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from pymongo import AsyncMongoClient
from pymongo.errors import DuplicateKeyError

from wechat import WeChatClient, WeChatError
from distribution import errors
from services.members import arrival_role
from services.merchant_settings import MerchantSettings
from services.sealing import Sealer
from stores.members import MemberStore, Upserted, phone_tail_of
from stores.writes import run_transaction


UNIONID_SWEEP_AFTER = timedelta(minutes=2)


class InvalidLoginCode(errors.Invalid):
    code = "invalid_code"


@dataclass(frozen=True)
class Profile:
    nickname: str | None = None
    avatar_url: str | None = None


class IdentityService:
    def __init__(self, client: AsyncMongoClient, members: MemberStore, miniapp: WeChatClient, oa: WeChatClient,
                 sealer: Sealer, merchant_settings: MerchantSettings):
        self.client = client
        self.merchant_settings = merchant_settings
        self.members = members
        self.miniapp = miniapp
        self.oa = oa
        self.sealer = sealer

    async def miniapp_login(self, code: str, profile: Profile, at: datetime,
                            admit: Callable[[str], Awaitable[None]] | None = None) -> Upserted:
        """Log in the user whose `wx.login` code this is; `admit` is asked with their openid before anything is
        written, and may refuse by raising."""
        try:
            session = await self.miniapp.miniapp.code_to_session(code)
        except WeChatError as error:
            if error.errcode in (40029, 40163, 40226):  # invalid, used, or risky code: the client's to fix
                raise InvalidLoginCode(f"WeChat refused the login code ({error.errcode}: {error.errmsg})",
                                       field="code") from None
            raise
        if admit is not None:
            await admit(session["openid"])
        upserted = await self.members.join_miniapp(session["openid"], session.get("unionid"), at,
                                                   await arrival_role(self.merchant_settings))
        changes = {"session_key_sealed": self.sealer.seal(session["session_key"]), "last_login_at": at}
        changes.update({name: value for name, value in vars(profile).items() if value})
        await self.members.update_fields(upserted.member["_id"], changes)
        return Upserted({**upserted.member, **changes}, upserted.created)

    async def change_profile(self, member: dict, nickname: str | None, avatar_url: str | None,
                             phone: str | None) -> dict:
        """Change what the member gave (the phone is kept sealed, its last four digits beside it for the member
        search); returns the member as it is now. Invalid when nothing is given."""
        changes = {name: value for name, value in (("nickname", nickname), ("avatar_url", avatar_url))
                   if value is not None}
        if phone is not None:
            changes.update(phone_sealed=self.sealer.seal(phone), phone_tail=phone_tail_of(phone))
        if not changes:
            raise errors.Invalid("nothing to change: give nickname, avatar_url or phone")
        await self.members.update_fields(member["_id"], changes)
        return {**member, **changes}

    async def resolve_oa_unionid(self, openid: str) -> str:
        """Ask WeChat for a follower's unionid and join the two members it names. Returns what was done."""
        member = await self.members.by_oa_openid(openid)
        if member is None:
            return "nothing to do"
        if member.get("unionid"):
            done = "nothing to do"
        elif unionid := (await self.oa.user.info(openid)).get("unionid"):
            done = await self.join_oa_unionid(member, unionid)
        else:
            done = "no unionid"  # the account is not bound to an open platform
        await self.members.mark_unionid_asked(member["_id"])
        return done

    async def unasked_followers(self, now: datetime, due_by: datetime) -> list[str]:
        """The openids of followers whose unionid was not asked for within UNIONID_SWEEP_AFTER of their first
        push, by `due_by` (the job was lost; the queue's `sweep_cutoff`, behind a backlog that may still hold
        it): the caller queues them again; asked for again after as long if still not."""
        due = await self.members.unionid_unasked(due_by - UNIONID_SWEEP_AFTER, limit=100)
        if due:
            await self.members.mark_unionid_unasked([member["_id"] for member in due], now)
        return [member["oa_openid"] for member in due if member.get("oa_openid")]

    async def join_oa_unionid(self, member: dict, unionid: str) -> str:
        """Give an official-account member the unionid WeChat named it by, joining the member that already
        holds it as the module says; the openid may end up on that other member. Returns what was done."""
        if member.get("unionid"):
            return "nothing to do"
        try:
            await self.members.attach_unionid(member["_id"], unionid)
            return "attached"
        except DuplicateKeyError:
            other = await self.members.by_unionid(unionid)
        if other is None or other.get("oa_openid"):
            return "held elsewhere"
        if await self._is_bare(member):
            await self._fold(member, into=other, identity={"oa_openid": member["oa_openid"],
                                                           "subscribed": member.get("subscribed")})
            return "folded official-account member into mini-program member"
        if await self._is_bare(other):
            await self._fold(other, into=member, identity={"miniapp_openid": other.get("miniapp_openid"),
                                                           "unionid": unionid})
            return "folded mini-program member into official-account member"
        await self.members.update_fields(member["_id"], {"unionid_conflict": other["_id"]})
        return "conflict recorded"

    async def _is_bare(self, member: dict) -> bool:
        if member.get("upline_id") or member.get("team_count") or (member.get("oa_openid")
                                                                  and member.get("miniapp_openid")):
            return False
        return not await self.members.ever_paid(member)

    async def _fold(self, bare: dict, into: dict, identity: dict) -> None:
        await run_transaction(self.client,
                              lambda session: self.members.fold(bare["_id"], into["_id"], identity, session))
