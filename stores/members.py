"""Member documents in MongoDB: the only module that knows their shape on disk."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import UpdateMany, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from distribution.binding import Bind, BindingSettings, MemberSnapshot, PromoterStatus, UplineEligibility
from distribution.chain_move import ChainMember, Join, Role, stored_role
from distribution.tree import CounterDeltas
from stores.paging import newest_first
from stores.writes import Increment, WriteSet


def new_member_id() -> str:
    return str(ObjectId())


def nickname_keys(nickname: str | None) -> list[str]:
    """What a nickname is found by: each of its first `NICKNAME_KEY_CHARACTERS` prefixes, case folded. An equality
    on one of them is an index read (SecantusDB serves no regex, not even an anchored one, from an index)."""
    folded = (nickname or "").strip().casefold()
    return [folded[:length] for length in range(1, min(len(folded), NICKNAME_KEY_CHARACTERS) + 1)]


def phone_tail_of(phone: str) -> str:
    """The last four digits of a phone number: all of it a search may match, the number itself stays sealed."""
    return phone[-PHONE_TAIL_DIGITS:]


def new_member_fields(created_at: datetime, role: Role | None = None) -> dict:
    """A new member; `role` given while the chain-move mode is on (see `services.members.arrival_role`)."""
    return {
        **({ROLE: role.value} if role is not None else {}),
        "_id": new_member_id(),
        "created_at": created_at,
        "nickname": None,
        "avatar_url": None,
        "upline_id": None,
        "ancestor_ids": [],
        "bound_at": None,
        "bind_source": None,
        "direct_count": 0,
        "team_count": 0,
        "frozen": False,
        "promoter_status": PromoterStatus.NONE.value,
    }


def snapshot(member: dict, spent_fen: int = 0) -> MemberSnapshot:
    """The member as the binding rules see it; `spent_fen` where they ask for its spending (`MemberStore.candidate`)."""
    return MemberSnapshot(
        id=member["_id"],
        created_at=member["created_at"],
        ancestor_ids=member.get("ancestor_ids", ()),
        bound_at=member.get("bound_at"),
        frozen=member.get("frozen", False),
        promoter_status=PromoterStatus(member.get("promoter_status", PromoterStatus.NONE.value)),
        spent_fen=spent_fen,
    )


def chain_member(member: dict) -> ChainMember:
    """The member as the chain-move rules see it; the fields are absent on members who joined while it was off."""
    return ChainMember(id=member["_id"], role=stored_role(member.get(ROLE), member.get("upline_id")),
                       referral_count=member.get(REFERRAL_COUNT, 0), owner_ids=member.get(OWNER_IDS, ()))


def stored_as(field: str, value: Any, absent: Any) -> dict[str, Any]:
    """A filter matching `field` equal to `value`, or absent when `value` is what absence reads as."""
    return {field: {"$in": [value, None]} if value == absent else value}


def buyer_totals_increment(buyer_id: str, orders: int, fen: int) -> Increment:
    """Add to the buyer's `order_count` and `order_fen` in `BUYER_TOTALS` (negative numbers take off)."""
    return Increment(buyer_id, {"order_count": orders, "order_fen": fen})


def order_totals(member: dict, buyer_totals: dict | None) -> dict[str, int]:
    """The member's `order_count` and `order_fen`: its `BUYER_TOTALS` counters plus what its own document holds
    of them from before they were kept apart (no longer written there, so the two never count an order twice)."""
    return {name: member.get(name, 0) + (buyer_totals or {}).get(name, 0) for name in BUYER_TOTAL_FIELDS}


@dataclass(frozen=True)
class FollowUp:
    """A bind as it waits for the worker: its log entry, and the counter changes above its upline."""

    entry: dict
    counter_deltas: dict[str, dict[str, int]]


@dataclass(frozen=True)
class JoinWrite:
    """A chain-move join (`distribution.chain_move.Join`), written by `plan_bind` beside its bind."""

    join: Join
    inviter_owner_ids: tuple[str, ...]  # as stored on the inviter: the write must find them unchanged
    team_size: int  # the member's, as stored: its owner team moves with it
    team_size_deltas: dict[str, int]  # `team_size` changes along the old and the new owner chains


@dataclass(frozen=True)
class Upserted:
    member: dict
    created: bool


MEMBERS = "members"
# The orders each buyer paid that still hold something, and what they hold (see services.orders), by member id.
# Counters of their own: SecantusDB rewrites every index entry of a document it updates, and a member document
# has a score of indexes, while these have none but their id.
BUYER_TOTALS = "buyer_totals"
BUYER_TOTAL_FIELDS = ("order_count", "order_fen")
# Which field names a member's team at a level (ancestors are nearest first); each has an index.
TEAM_LEVEL_FIELDS = {1: "upline_id", 2: "ancestor_ids.1", None: "ancestor_ids"}
# When the latest direct member, and the latest member anywhere below, were bound: kept by binds (`$max`,
# so never older than the newest), they let a long team's first page be read in small time bands.
NEWEST_FIELDS = {1: "newest_direct_at", None: "newest_team_at"}
# Binds awaiting the worker's follow-up, on the member they bound (see `plan_bind`); absent when none.
FOLLOW_UPS = "binds_to_follow_up"
# Present exactly when some are: what a sparse index finds members by.
AWAITING_FOLLOW_UP = f"{FOLLOW_UPS}.entry._id"
# A follower first seen by a push, whose unionid the worker has not asked WeChat for since then (a lost job is
# queued again by a sweep, which sets it anew); removed once asked. Present only while due: a partial index.
UNIONID_UNASKED_SINCE = "unionid_unasked_since"
# One document counting the team moves that committed (see `plan_bind`).
TREE_MOVES = "tree_moves"
MOVES_ID = "moves"
# Teams up to this size are read in one query even on SecantusDB, which reads every match before sorting.
SHORT_TEAM = 200
# The member search (`search`): by these fields, each read newest first through an index of its own.
NICKNAME_KEYS = "nickname_keys"
NICKNAME_KEY_CHARACTERS = 20
PHONE_TAIL = "phone_tail"
PHONE_TAIL_DIGITS = 4
SEARCH_TIME = "created_at"
# The chain-move mode's fields (distribution.chain_move), absent on members who joined while it was off:
# `role`, `referral_count` (positions used), `owner_ids` (team owners nearest first), `team_owner_id` (its first,
# kept apart for the index of the owned pages) and `team_size` (members whose owner chain holds this one).
ROLE = "role"
REFERRAL_COUNT = "referral_count"
OWNER_IDS = "owner_ids"
TEAM_OWNER_ID = "team_owner_id"
TEAM_SIZE = "team_size"


class MemberStore:
    def __init__(self, db: AsyncDatabase):
        self.db = db
        self.collection = db[MEMBERS]
        self.moves = db[TREE_MOVES]

    async def get(self, member_id: str) -> dict | None:
        return await self.collection.find_one({"_id": member_id})

    async def by_oa_openid(self, openid: str) -> dict | None:
        return await self.collection.find_one({"oa_openid": openid})

    async def several(self, member_ids: list[str]) -> dict[str, dict]:
        return {m["_id"]: m async for m in self.collection.find({"_id": {"$in": member_ids}})}

    async def candidate(self, member: dict, binding: BindingSettings) -> MemberSnapshot:
        """`snapshot` of the member as a would-be upline under `binding`: with its spending (what its paid orders
        still hold) when the merchant's rule for uplines is spending, one read of its order totals; without it
        otherwise, no read."""
        spent_fen = 0
        if binding.upline_eligibility is UplineEligibility.SPEND_THRESHOLD:
            kept = await self.db[BUYER_TOTALS].find_one({"_id": member["_id"]})
            spent_fen = order_totals(member, kept)["order_fen"]
        return snapshot(member, spent_fen)

    async def ever_paid(self, member: dict) -> bool:
        """Whether an order of the member's was ever paid (refunded since or not): it has order totals."""
        return (any(order_totals(member, None).values())
                or await self.db[BUYER_TOTALS].count_documents({"_id": member["_id"]}, limit=1) > 0)

    async def with_order_totals(self, members: list[dict]) -> list[dict]:
        """`members` with their `order_totals`, in one read."""
        kept = {each["_id"]: each async for each in self.db[BUYER_TOTALS].find(
            {"_id": {"$in": [member["_id"] for member in members]}})}
        return [{**member, **order_totals(member, kept.get(member["_id"]))} for member in members]

    async def direct_counts(self, member_ids: list[str]) -> dict[str, int]:
        """Member id -> how many direct members it has, for those of `member_ids` that exist."""
        return {m["_id"]: int(m.get("direct_count", 0))
                async for m in self.collection.find({"_id": {"$in": member_ids}}, {"direct_count": 1})}

    async def mark_oa_subscribed(self, openid: str, subscribed: bool, at: datetime,
                                 role: Role | None = None) -> Upserted:
        """Create the member on first sight (with `role`, if given), else flip `subscribed`; never deletes.

        A follower's every scan says "subscribed" again: the member is read first and rewritten only when the flag
        changes, so a burst of scans by one person does not queue as writes of one document."""
        member = await self.by_oa_openid(openid)
        if member is not None and member.get("subscribed") is subscribed:
            return Upserted(member, created=False)
        changes = {"subscribed": subscribed, ("subscribed_at" if subscribed else "unsubscribed_at"): at}
        for attempt in range(2):
            try:
                result = await self.collection.update_one(
                    {"oa_openid": openid},
                    {"$set": changes, "$setOnInsert": {**new_member_fields(at, role), UNIONID_UNASKED_SINCE: at}},
                    upsert=True,
                )
                break
            except DuplicateKeyError:
                # Two first pushes raced to insert; the loser's retry updates the winner's document.
                if attempt:
                    raise
        member = await self.by_oa_openid(openid)
        return Upserted(member, created=result.upserted_id is not None)

    async def join_oa_visitor(self, openid: str, at: datetime) -> Upserted:
        """The member of an official-account openid met outside a push (an H5 page): created on first
        sight, and `subscribed` left alone, since opening a page says nothing about following."""
        member = await self.by_oa_openid(openid)
        if member is not None:
            return Upserted(member, created=False)
        fields = {**new_member_fields(at), "oa_openid": openid}
        try:
            await self.collection.insert_one(fields)
        except DuplicateKeyError:
            # A concurrent first visit (or follow) of the same person inserted first: theirs is the member.
            return Upserted(await self.by_oa_openid(openid), created=False)
        return Upserted(fields, created=True)

    async def by_miniapp_openid(self, openid: str) -> dict | None:
        return await self.collection.find_one({"miniapp_openid": openid})

    async def by_unionid(self, unionid: str) -> dict | None:
        return await self.collection.find_one({"unionid": unionid})

    async def join_miniapp(self, openid: str, unionid: str | None, at: datetime,
                           role: Role | None = None) -> Upserted:
        """The member of a mini-program user: by openid, else the member holding its unionid, else a new one."""
        for _ in range(3):
            member = await self.by_miniapp_openid(openid)
            if member is not None:
                return Upserted(member, created=False)
            if unionid:
                joined = await self.collection.update_one({"unionid": unionid, "miniapp_openid": None},
                                                          {"$set": {"miniapp_openid": openid}})
                if joined.modified_count:
                    return Upserted(await self.by_miniapp_openid(openid), created=False)
            fields = {**new_member_fields(at, role), "miniapp_openid": openid, "unionid": unionid}
            try:
                await self.collection.insert_one(fields)
            except DuplicateKeyError:
                continue  # a concurrent login of the same user won: look again
            return Upserted(fields, created=True)
        raise RuntimeError(f"could not settle the member of mini-program user {openid}")

    async def update_fields(self, member_id: str, changes: dict[str, Any]) -> None:
        """Set `changes`; a new nickname brings the keys the search finds it by."""
        if "nickname" in changes:
            changes = {**changes, NICKNAME_KEYS: nickname_keys(changes["nickname"])}
        await self.collection.update_one({"_id": member_id}, {"$set": changes})

    async def set_promoter_status(self, member_id: str, status: PromoterStatus,
                                  session: AsyncClientSession | None = None) -> None:
        await self.collection.update_one({"_id": member_id}, {"$set": {"promoter_status": status.value}},
                                         session=session)

    async def attach_unionid(self, member_id: str, unionid: str) -> bool:
        """DuplicateKeyError when another member holds it; False when the member already has one."""
        attached = await self.collection.update_one({"_id": member_id, "unionid": None}, {"$set": {"unionid": unionid}})
        return attached.modified_count == 1

    async def fold(self, bare_id: str, into_id: str, identity: dict[str, Any], session: AsyncClientSession) -> None:
        """Move a bare member's identity onto another; the bare document stays, pointing at it."""
        await self.collection.update_one(
            {"_id": bare_id},
            {"$unset": {name: "" for name in ("oa_openid", "miniapp_openid", "unionid")}, "$set": {"merged_into": into_id}},
            session=session,
        )
        await self.collection.update_one({"_id": into_id}, {"$set": identity}, session=session)

    async def set_frozen(self, member_id: str, frozen: bool) -> bool:
        result = await self.collection.update_one({"_id": member_id}, {"$set": {"frozen": frozen}})
        return result.matched_count == 1

    async def frozen_ids(self) -> list[str]:
        """Every frozen member (a few, read by the index on `frozen`)."""
        return [found["_id"] for found in await self.collection.find({"frozen": True}, {"_id": 1}).to_list()]

    async def moves_version(self) -> int:
        """How many team moves have committed: a move commits only if none did since it read this."""
        found = await self.moves.find_one({"_id": MOVES_ID})
        if found is not None:
            return found["version"]
        try:
            await self.moves.insert_one({"_id": MOVES_ID, "version": 0})
        except DuplicateKeyError:
            pass  # created by a concurrent first move; still at 0, or that move's guard will tell
        return 0

    async def pending_rewrites(self, member_ids: list[str], chain_field: str = "ancestor_ids") -> dict[str, list[str]]:
        """The stored chain (`ancestor_ids` or `owner_ids`) of those of `member_ids` whose team still awaits its
        rewrite."""
        return {m["_id"]: m.get(chain_field, []) async for m in self.collection.find(
            {"_id": {"$in": member_ids}, "subtree_stale": True}, {chain_field: 1})}

    @staticmethod
    def plan_bind(bind: Bind, upline: MemberSnapshot, team_size: int, deltas: CounterDeltas, log_entry: dict,
                  writes: WriteSet, moves_version: int | None, rewrite_team_now: bool,
                  joined: JoinWrite | None = None) -> None:
        """The bind and the upline's counters, as guarded writes of one step. What the worker does after
        (`follow_ups`: the log entry, everyone else's counter changes) goes on the member, in its update.

        Both the member and the upline must still be as the decision read
        them: the member so that one of many concurrent attempts wins
        (team_count too: the counters moved along with it were computed from
        it), the upline so that two members binding under each other at once
        (a cycle neither read could see) conflict on its document and the
        loser decides again, and so that it is still eligible. The ancestors
        above the upline are left out of the step: every bind in a tree would
        otherwise write its root, and concurrent binds would all conflict there.

        A member bringing a team (`moves_version` given) also bumps the count
        of team moves, so that such moves commit one at a time: two teams
        binding under each other's members write four different documents and
        would otherwise both pass. Its team's ancestors are rewritten in the
        step (`rewrite_team_now`) or, for a large team, marked for the worker.

        In the chain-move mode (`joined`) the member's team relation is
        written in the same update, guarded on its stored owners and
        `team_size`, and the inviter's position is claimed in the upline's:
        guarded on `referral_count` being the position before, and on the
        owners the decision read; the inviter becomes a boss in it when it
        upgrades. Every `team_size` change goes to the worker with the rest.
        The member's owner team has its chains rewritten with its ancestors.
        """
        deferred = {member_id: _increments(deltas, member_id)
                    for member_id in sorted(set(deltas.team_count) | set(deltas.direct_count)) if member_id != upline.id}
        member_filter = {"_id": bind.member_id, "ancestor_ids": list(bind.expected_ancestor_ids),
                         "bound_at": bind.expected_bound_at, "team_count": team_size, "frozen": {"$ne": True}}
        relation = {"upline_id": bind.upline_id, "ancestor_ids": list(bind.ancestor_ids), "bound_at": bind.bound_at,
                    "bind_source": bind.source.value,
                    # The poster template that brought the member, if known: their orders' sales count for it
                    # (stores.funnel).
                    "bind_template": log_entry.get("template")}
        brings_team = team_size > 0
        upline_filter: dict[str, Any] = {}
        upline_changes: dict[str, Any] = {"$inc": _increments(deltas, upline.id)}
        if joined is not None:
            join = joined.join
            for member_id, delta in joined.team_size_deltas.items():
                deferred.setdefault(member_id, {})[TEAM_SIZE] = delta
            member_filter.update({**stored_as(OWNER_IDS, list(join.expected_owner_ids), []),
                                  **stored_as(TEAM_SIZE, joined.team_size, 0)})
            relation.update({ROLE: join.role.value, OWNER_IDS: list(join.owner_ids),
                             TEAM_OWNER_ID: join.team_owner_id})
            brings_team = brings_team or joined.team_size > 0
            upline_filter.update({**stored_as(REFERRAL_COUNT, join.position - 1, 0),
                                  **stored_as(OWNER_IDS, list(joined.inviter_owner_ids), [])})
            upline_changes["$inc"] = {**upline_changes["$inc"], REFERRAL_COUNT: 1}
            if join.inviter_upgrades:
                upline_changes["$set"] = {ROLE: Role.BOSS.value}
        writes.guard(MEMBERS, member_filter,
                     {"$set": {**relation, "subtree_stale": brings_team and not rewrite_team_now},
                      "$push": {FOLLOW_UPS: {"entry": log_entry, "counter_deltas": deferred}}})
        # A document without a status reads as NONE (`snapshot`): the guard must match it the same way.
        status = bind.upline_status.value
        eligible: dict[str, Any] = {"promoter_status": {"$in": [status, None]} if bind.upline_status is
                                    PromoterStatus.NONE else status}
        writes.guard(MEMBERS, {"_id": upline.id, "ancestor_ids": list(upline.ancestor_ids), "frozen": {"$ne": True},
                               **eligible, **upline_filter},
                     {**upline_changes,
                      "$max": {NEWEST_FIELDS[1]: bind.bound_at, NEWEST_FIELDS[None]: bind.bound_at}})
        if moves_version is not None:
            writes.guard(TREE_MOVES, {"_id": MOVES_ID, "version": moves_version}, {"$inc": {"version": 1}})
        if team_size and rewrite_team_now:
            writes.update(MEMBERS, UpdateMany({"ancestor_ids": bind.member_id},
                                              _rewrite_below(bind.member_id, bind.ancestor_ids)))
        if joined is not None and joined.team_size and rewrite_team_now:
            writes.update(MEMBERS, UpdateMany({OWNER_IDS: bind.member_id},
                                              _rewrite_below(bind.member_id, joined.join.owner_ids, OWNER_IDS)))

    async def with_binds_to_follow_up(self, limit: int) -> list[dict]:
        return await self.collection.find({AWAITING_FOLLOW_UP: {"$exists": True}},
                                          {FOLLOW_UPS: 1}).limit(limit).to_list()

    @staticmethod
    def binds_awaiting_follow_up(member: dict) -> list[dict]:
        """The log entries of `member`'s binds that the worker has not logged yet."""
        return [each["entry"] for each in member.get(FOLLOW_UPS, [])]

    @staticmethod
    def plan_binds_followed_up(member: dict, writes: WriteSet) -> list[FollowUp]:
        """Take `member`'s binds awaiting follow-up off it (if no new one came meanwhile); returns them."""
        pending = member.get(FOLLOW_UPS, [])
        writes.guard(MEMBERS, {"_id": member["_id"], FOLLOW_UPS: pending},
                     {"$unset": {FOLLOW_UPS: ""}})
        return [FollowUp(each["entry"], each["counter_deltas"]) for each in pending]

    @staticmethod
    def plan_counter_deltas(deltas: dict[str, dict[str, int]], newest: dict[str, datetime], writes: WriteSet) -> None:
        """Add `deltas` to the members' counters; `newest`: the time of the latest bind into each one's team."""
        for member_id, increments in sorted(deltas.items()):
            writes.update(MEMBERS, UpdateOne({"_id": member_id}, {"$inc": increments,
                                                                  "$max": {NEWEST_FIELDS[None]: newest[member_id]}}))

    async def resync_subtree(self, member: dict, batch_size: int) -> int:
        """Rewrite the ancestors of `member`'s descendants after it moved, `batch_size` at a time, and the owner
        chains of its owner team (members whose `owner_ids` hold it) the same way.

        Each descendant keeps its path down to the member and takes the
        member's current ancestors after it; running this again changes
        nothing, so a crashed or repeated run is harmless. Passes repeat until
        one changes nothing: a member that bound under a not yet rewritten
        descendant during a pass, behind its position, is caught by the next.
        Returns how many chains changed.
        """
        changed = 0
        for chain_field in ("ancestor_ids", OWNER_IDS):
            changed += await self._resync_chains(member["_id"], chain_field, member.get(chain_field, []), batch_size)
        await self.collection.update_one({"_id": member["_id"], "bound_at": member["bound_at"]},
                                         {"$set": {"subtree_stale": False}})
        return changed

    async def _resync_chains(self, member_id: str, chain_field: str, chain: Sequence[str], batch_size: int) -> int:
        rewrite = _rewrite_below(member_id, chain, chain_field)
        changed, changed_in_pass, after = 0, 0, ""
        while True:
            ids = [d["_id"] async for d in self.collection.find(
                {chain_field: member_id, "_id": {"$gt": after}}, {"_id": 1}).sort("_id", 1).limit(batch_size)]
            if ids:
                result = await self.collection.bulk_write([UpdateMany({"_id": {"$in": ids}}, rewrite)])
                changed_in_pass += result.modified_count
                after = ids[-1]
                continue
            if not changed_in_pass:
                return changed
            changed, changed_in_pass, after = changed + changed_in_pass, 0, ""

    async def unionid_unasked(self, before: datetime, limit: int) -> list[dict]:
        """Followers not asked for their unionid since `before`: `{_id, oa_openid}`."""
        return await self.collection.find({UNIONID_UNASKED_SINCE: {"$lt": before}}, {"oa_openid": 1}) \
            .limit(limit).to_list()

    async def mark_unionid_unasked(self, member_ids: list[str], since: datetime) -> None:
        await self.collection.update_many({"_id": {"$in": member_ids}}, {"$set": {UNIONID_UNASKED_SINCE: since}})

    async def mark_unionid_asked(self, member_id: str) -> None:
        await self.collection.update_one({"_id": member_id}, {"$unset": {UNIONID_UNASKED_SINCE: ""}})

    async def stale_subtrees(self, limit: int) -> list[dict]:
        return await self.collection.find({"subtree_stale": True}).limit(limit).to_list()

    async def search(self, limit: int, after: tuple[datetime, str] | None, newest: datetime, *,
                     nickname_prefix: str | None = None, phone_tail: str | None = None, grade: str | None = None,
                     frozen: bool | None = None, promoter_status: PromoterStatus | None = None) -> list[dict]:
        """Newest first by `created_at`, `limit` members after the cursor `(created_at, _id)` that match every
        criterion given, read in time bands below `newest` (no older than the newest member) — but for a phone
        tail, which one member in thousands has: those are read at once. Each criterion leads an index of its
        own; one given beside another is checked on what that index finds."""
        match: dict[str, Any] = {}
        if nickname_prefix is not None:
            match[NICKNAME_KEYS] = nickname_prefix.strip().casefold()
        if phone_tail is not None:
            match[PHONE_TAIL] = phone_tail
        if grade is not None:
            match["grade"] = grade
        if frozen is not None:
            match["frozen"] = frozen
        if promoter_status is not None:
            match["promoter_status"] = promoter_status.value
        return await newest_first(self.collection, match, SEARCH_TIME, limit, after,
                                  newest if phone_tail is None else None)

    async def team_page(self, member: dict, level: int | None, limit: int,
                        after: tuple[datetime, str] | None) -> list[dict]:
        """Newest first, `limit` members at `level` below `member` (1: direct, 2: theirs; None: the whole
        team) after the cursor `(bound_at, _id)`: indexed range reads of about a page at any tree size."""
        size = member.get("direct_count" if level == 1 else "team_count", 0)
        newest = member.get(NEWEST_FIELDS[1 if level == 1 else None]) if size > SHORT_TEAM else None
        return await newest_first(self.collection, {TEAM_LEVEL_FIELDS[level]: member["_id"]}, "bound_at", limit,
                                  after, newest)

    async def owned_page(self, member: dict, limit: int, after: tuple[datetime, str] | None) -> list[dict]:
        """Newest first, `limit` members whose team owner is `member` (chain-move mode) after the cursor
        `(bound_at, _id)`. Each joined while its owner was among its ancestors, so the newest time below
        `member` bounds them all."""
        newest = member.get(NEWEST_FIELDS[None]) if member.get(TEAM_SIZE, 0) > SHORT_TEAM else None
        return await newest_first(self.collection, {TEAM_OWNER_ID: member["_id"]}, "bound_at", limit, after, newest)


def _rewrite_below(member_id: str, chain: Sequence[str], chain_field: str = "ancestor_ids") -> list[dict]:
    """The update pipeline giving a member whose `chain_field` holds `member_id` its chain down to the member,
    then `chain`."""
    return [{"$set": {chain_field: {"$concatArrays": [
        {"$slice": [f"${chain_field}", {"$add": [{"$indexOfArray": [f"${chain_field}", member_id]}, 1]}]},
        list(chain),
    ]}}}]


def _increments(deltas: CounterDeltas, member_id: str) -> dict[str, int]:
    increments = {}
    if member_id in deltas.team_count:
        increments["team_count"] = deltas.team_count[member_id]
    if member_id in deltas.direct_count:
        increments["direct_count"] = deltas.direct_count[member_id]
    return increments
