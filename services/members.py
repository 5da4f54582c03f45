"""Members: their life cycle on the official account, how a promoter is named to their team, and the member search.

The search finds members by one key — a member id or an openid (one member), a
nickname prefix or a phone's last four digits — or lists them all, newest
first, optionally by one filter: grade, frozen or promoter status. Each of
these leads an index of its own and is read in time bands of about a page
(`stores.members.MemberStore.search`), so a page costs the same at a million
members. A filter beside the phone tail is checked on the few members the tail
finds; other combinations would read far more than a page and are refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone

from distribution import errors
from distribution.binding import BindingSettings, MemberSnapshot, PromoterStatus
from distribution.chain_move import ChainMoveSettings, Role
from services.merchant_settings import MerchantSettings
from stores.grades import GradeStore
from stores.ledger import LedgerStore, balance_field
from stores.members import NICKNAME_KEY_CHARACTERS, MemberStore, Upserted

UNNAMED_PROMOTER = "推广员"
MAX_NICKNAME_PREFIX = NICKNAME_KEY_CHARACTERS
MEMBER_ID = re.compile(r"^[0-9a-f]{24}$")
# What an openid looks like (WeChat's are 28 of these characters); a search for anything else, a Chinese nickname
# above all, never looks for an openid.
OPENID_SHAPE = re.compile(r"^[A-Za-z0-9_-]{6,128}$")


class MemberNotFound(errors.NotFound):
    code = "member_not_found"


class UnindexedSearch(errors.Invalid):
    """A combination of search criteria no index serves: it would read far more than a page."""

    code = "unindexed_search"


async def arrival_role(merchant_settings: MerchantSettings) -> Role | None:
    """The role a member created now is stored with: a boss while the chain-move mode is on (one arriving through
    a code joins as an agent all the same, see `services.relations.joining_role`), none while it is off."""
    return Role.BOSS if (await merchant_settings.get(ChainMoveSettings)).enabled else None


def promoter_name(upline: dict | None) -> str:
    """How a promoter is named to the members they brought: their nickname, or a neutral word."""
    return (upline or {}).get("nickname") or UNNAMED_PROMOTER


@dataclass(frozen=True)
class Listed:
    """A member as the search lists them: with their balances, lifetime totals and upline."""

    member: dict
    balances: dict[str, int]  # frozen_fen, available_fen, locked_fen
    totals: dict  # stores.grades' promoter_totals document; empty when there is none
    upline: dict | None


class MemberService:
    def __init__(self, store: MemberStore, merchant_settings: MerchantSettings):
        self.store = store
        self.merchant_settings = merchant_settings
        self.accounts = LedgerStore(store.db)
        self.totals = GradeStore(store.db)

    async def subscribed(self, openid: str, at: datetime) -> Upserted:
        return await self.store.mark_oa_subscribed(openid, True, at, await arrival_role(self.merchant_settings))

    async def unsubscribed(self, openid: str, at: datetime) -> Upserted:
        return await self.store.mark_oa_subscribed(openid, False, at, await arrival_role(self.merchant_settings))

    async def get(self, member_id: str) -> dict | None:
        return await self.store.get(member_id)

    async def by_oa_openid(self, openid: str) -> dict | None:
        return await self.store.by_oa_openid(openid)

    async def several(self, member_ids: Iterable[str]) -> dict[str, dict]:
        """The members of `member_ids` that exist, by id, in one read (lists name their buyers, promoters and
        applicants with it)."""
        wanted = sorted(set(member_ids))
        return await self.store.several(wanted) if wanted else {}

    async def team_page(self, member: dict, level: int | None, limit: int,
                        after: tuple[datetime, str] | None) -> list[dict]:
        """`member`'s team newest first (level 1: direct members, 2: theirs, None: everyone below), `limit`
        members after the cursor `(bound_at, _id)`."""
        return await self.store.team_page(member, level, limit, after)

    async def candidate(self, member: dict, binding: BindingSettings) -> MemberSnapshot:
        """The member as the rules for uplines see it, its spending read where they ask for it."""
        return await self.store.candidate(member, binding)

    async def teammates(self, member: dict, level: int | None, limit: int,
                        after: tuple[datetime, str] | None) -> list[dict]:
        """`team_page` with each member's order totals (`order_count`, `order_fen`), as the mini-program shows
        a promoter's team."""
        return await self.store.with_order_totals(await self.store.team_page(member, level, limit, after))

    async def owned_page(self, member: dict, limit: int, after: tuple[datetime, str] | None) -> list[dict]:
        """The members whose team owner is `member` (the chain-move mode) newest first, `limit` after the cursor
        `(bound_at, _id)`."""
        return await self.store.owned_page(member, limit, after)

    async def chain(self, member: dict) -> list[dict]:
        """`member`'s uplines, nearest first, in one read (those that no longer exist left out)."""
        found = await self.several(member.get("ancestor_ids", ()))
        return [found[member_id] for member_id in member.get("ancestor_ids", ()) if member_id in found]

    async def search(self, limit: int, after: tuple[datetime, str] | None, *, q: str | None = None,
                     nickname: str | None = None, phone_tail: str | None = None, grade: str | None = None,
                     frozen: bool | None = None, promoter_status: PromoterStatus | None = None) -> list[Listed]:
        """Newest first, `limit` members after the cursor `(created_at, _id)`: those `q` names (a member id, an
        official-account or mini-program openid, else a nickname prefix), or with a nickname starting with
        `nickname`, or a phone ending in `phone_tail`, or all of them; each in `grade`, `frozen` and
        `promoter_status` when given. UnindexedSearch for a combination no index serves."""
        filters = {name: value for name, value in (("grade", grade), ("frozen", frozen),
                                                    ("promoter_status", promoter_status)) if value is not None}
        keys = [name for name, value in (("q", q), ("nickname", nickname), ("phone_tail", phone_tail)) if value]
        if len(keys) > 1:
            raise UnindexedSearch(f"search by one of q, nickname and phone_tail, not {' and '.join(keys)}",
                                  field=keys[1])
        if q and (named := await self._named(q)) is not None:
            # One member at most: all on the first page.
            return [] if after else await self.summaries([member for member in named if _matches(member, filters)])
        prefix = q or nickname
        if prefix is not None and len(prefix) > MAX_NICKNAME_PREFIX:
            raise errors.Invalid(f"a nickname is searched by its first {MAX_NICKNAME_PREFIX} characters at most",
                                 field=keys[0])
        if filters and not phone_tail and (prefix is not None or len(filters) > 1):
            shown = [*(keys[:1] if prefix is not None else []), *filters]
            raise UnindexedSearch(f"{' and '.join(shown)} cannot be searched together: search by a nickname alone, "
                                  f"or by one filter, or by a phone tail with any filters", field=shown[-1])
        members = await self.store.search(limit, after, datetime.now(timezone.utc), nickname_prefix=prefix,
                                          phone_tail=phone_tail, **filters)
        return await self.summaries(members)

    async def summaries(self, members: list[dict]) -> list[Listed]:
        """`members` with their balances, lifetime totals and uplines: one read of each for all of them."""
        ids = [member["_id"] for member in members]
        if not ids:
            return []
        balances = await self.accounts.balances_of_accounts(ids)
        totals = await self.totals.totals_of(ids)
        uplines = await self.several(member["upline_id"] for member in members if member.get("upline_id"))
        return [Listed(member, {balance_field(bucket): fen for bucket, fen in balances[member["_id"]].items()},
                       totals.get(member["_id"], {}), uplines.get(member.get("upline_id")))
                for member in members]

    async def _named(self, q: str) -> list[dict] | None:
        """The member `q` names by id or openid (none when no such member), or None when `q` is no id nor
        openid of anyone: a nickname then."""
        if MEMBER_ID.match(q):
            member = await self.store.get(q)
            return [member] if member else []
        if not OPENID_SHAPE.match(q):
            return None
        found = [member for member in (await self.store.by_oa_openid(q), await self.store.by_miniapp_openid(q))
                 if member is not None]
        return list({member["_id"]: member for member in found}.values()) or None


def _matches(member: dict, filters: dict) -> bool:
    """Whether a member found by id or openid is in the filters too, as `MemberStore.search` filters."""
    stored = {"grade": member.get("grade"), "frozen": member.get("frozen", False),
              "promoter_status": PromoterStatus(member.get("promoter_status", PromoterStatus.NONE.value))}
    return all(stored[name] == value for name, value in filters.items())
