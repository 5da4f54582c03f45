"""Binding members to the promoter whose code they scanned, and reading teams.

A bind lets the domain's rules decide on the member and the would-be upline
as read (by the caller, or recently), and writes the relation and the
upline's counters in one transaction whose updates are conditional on all
the decision relied on.
When another attempt changed either member first, the transaction finds
nothing to update and the attempt is decided again on fresh data — so a
hundred concurrent scans bind exactly one upline, and two members binding
under each other at once cannot make a cycle.

A member that brings a team along is a move of a whole subtree, the only
kind of bind that can close a loop through members other than the two it
writes (A with a, B with b: A under b while B under a). Such moves also bump
one shared count of moves, so they commit one at a time, and their cycle
check reads the upline's chain as it will be once pending rewrites are done.

What a bind leaves for later — its bind log entry, the counters of the
ancestors above the upline, and the upline's notice of a new direct member —
is recorded on the member in the bind's own update and carried out once by
the worker (`apply_follow_ups`, every second): the bind itself stays one
transaction of two updates at any depth, and a popular tree's root is
written once a batch. A bound entry reaches the bind log within a second;
refusals are logged at once.

In the chain-move mode (`distribution.chain_move`, while its settings are
enabled) the bind is also a join: the same transaction writes the member's
role and team owners and claims the inviter's next position (see `bind`);
its `team_size` changes go to the worker with the other counters, and a
member's owner team moves with it like its descendants.

Cost of a move: a team of up to `inline_resync_limit` has its ancestors
rewritten in the bind's own transaction (one `update_many`, O(team size)
documents). A larger team is rewritten by the worker after the commit,
`resync_batch` per round trip, until a pass changes nothing. Until it
finishes, its members list the mover's old ancestors beyond the mover: an
order placed in that window snapshots the old chain, and a member binding
into the team then is counted on that old chain above the mover.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

import pymongo

from pymongo import AsyncMongoClient

from distribution.binding import Bind, BindingSettings, BindSource, Refusal, decide_bind
from distribution.calendar import china_time
from distribution.chain_move import ChainMoveSettings, Join, JoinDecision, Role, decide_join
from distribution.rate_limits import Action
from distribution.scene import parse_scene
from distribution.tree import current_chain, move_counter_deltas
from services.funnel import FunnelService
from services.members import MemberNotFound
from services.merchant_settings import MerchantSettings
from services.rate_limits import RateLimitService
from services.risk import Origin, RiskService
from services.notifications import NotificationService, thing
from services.turns import Turns
from stores.bind_log import BIND_LOG, BindLog, bind_entry
from stores.grades import GRADE_CHANGES, role_upgrade
from stores.job_queue import JobQueue
from stores.locks import held_once
from stores.member_roles import MemberRoles
from stores.members import (OWNER_IDS, REFERRAL_COUNT, ROLE, TEAM_SIZE, JoinWrite, MemberStore, chain_member,
                            snapshot)
from stores.notifications import NOTIFICATIONS
from stores.writes import Conflict, WriteSet, commit

log = logging.getLogger(__name__)

# Refusals the service adds to the domain's: the scene named no promoter, or
# the member kept changing under us.
MALFORMED_SCENE = "malformed_scene"
CONTENDED = "contended"
RATE_LIMITED = "rate_limited"

RESYNC_JOB = "resync_subtree"
FOLLOW_UP_COMMIT_SECONDS = 10.0
NEW_DIRECT_MEMBER = "new_direct_member"
UNNAMED_MEMBER = "新成员"
PROMOTED_TO_BOSS = "promoted_to_boss"
ROLE_WORDS = {Role.AGENT: "代理", Role.BOSS: "老板"}


def joining_role(member: dict, created_by_this_push: bool) -> Role:
    """The role a member joins a team with: an agent when it arrives through this very code; else the one
    stored; else, for one that joined while the chain-move mode was off, a boss only if it was read as one
    (no upline) when members joined through it, which its referrals tell. A role never goes down."""
    if created_by_this_push:
        return Role.AGENT
    if member.get(ROLE) is not None:
        return Role(member[ROLE])
    return Role.BOSS if member.get("upline_id") is None and member.get(REFERRAL_COUNT, 0) else Role.AGENT


def brings_team(member: dict, teams: ChainMoveSettings | None) -> bool:
    """Whether some member's chain passes through `member`: its ancestors, or in the chain-move mode its owners."""
    return member.get("team_count", 0) > 0 or (teams is not None and member.get(TEAM_SIZE, 0) > 0)


class RecentUplines:
    """Uplines' documents as this process read them in the last seconds; at most `size` of them.

    A stale one is safe (the bind's guards find it out and the bind reads
    afresh); it only saves the read of a popular promoter on every scan.
    """

    def __init__(self, seconds: float = 10.0, size: int = 10_000):
        self.seconds = seconds
        self.size = size
        self._documents: OrderedDict[str, tuple[float, dict]] = OrderedDict()

    def get(self, member_id: str) -> dict | None:
        read_at, document = self._documents.get(member_id, (0.0, None))
        return document if time.monotonic() - read_at < self.seconds else None

    def put(self, document: dict | None) -> None:
        if document is None:
            return
        self._documents[document["_id"]] = (time.monotonic(), document)
        self._documents.move_to_end(document["_id"])
        while len(self._documents) > self.size:
            self._documents.popitem(last=False)


@dataclass(frozen=True)
class BindOutcome:
    bound: bool
    reason: str | None = None
    upline: dict | None = None

    @classmethod
    def refused(cls, reason: str, upline: dict | None = None) -> "BindOutcome":
        return cls(False, reason, upline)


class RelationService:
    attempts = 5

    def __init__(self, client: AsyncMongoClient, members: MemberStore, bind_log: BindLog,
                 merchant_settings: MerchantSettings, queue: JobQueue, notifications: NotificationService, *,
                 inline_resync_limit: int = 1000, resync_batch: int = 1000, limits: RateLimitService | None = None,
                 risk: RiskService | None = None):
        self.client = client
        self.risk = risk  # None: binds are not checked for velocity
        self.limits = limits  # None: scans are not rate limited (tools and benchmarks that bind directly)
        self.notifications = notifications
        self.members = members
        self.bind_log = bind_log
        self.merchant_settings = merchant_settings
        self.queue = queue
        self.inline_resync_limit = inline_resync_limit
        self.recent_uplines = RecentUplines()
        self.resync_batch = resync_batch
        self.funnel = FunnelService(members.db, merchant_settings)
        self.roles = MemberRoles(members.db)
        # Binds of one member take turns, as do joins through one inviter (its next position): run at once, all
        # but one would conflict on the same document and decide again. Across processes the guards decide.
        self.bind_turns = Turns()

    async def bind_scene(self, member: dict, scene: str | None, source: BindSource, at: datetime,
                         created_by_this_push: bool, origin: Origin | None = None) -> BindOutcome:
        """A scan carrying `scene`; a scene that names no promoter is logged and refused. A scan of an existing
        promoter's code counts in the funnel, bound or not."""
        scanned = parse_scene(scene)
        if scanned is None:
            await self.bind_log.record(member_id=member["_id"], upline_id=None, source=source.value,
                                       result="refused", reason=MALFORMED_SCENE, at=at,
                                       detail={"scene": (scene or "")[:128]})
            return BindOutcome.refused(MALFORMED_SCENE)
        if self.limits is not None and await self.limits.hit(Action.BIND, member=member["_id"]):
            # A scan is answered whatever happens: over the limit its bind is refused, and only logged.
            await self.bind_log.record(member_id=member["_id"], upline_id=scanned.member_id, source=source.value,
                                       result="refused", reason=RATE_LIMITED, at=at)
            return BindOutcome.refused(RATE_LIMITED)
        template_id = await self.funnel.offered_template(scanned.template_id)
        outcome = await self.bind(member, scanned.member_id, source, at, created_by_this_push,
                                  template_id=template_id, origin=origin)
        if outcome.upline is not None:
            await self.funnel.scanned(scanned.member_id, template_id, at)
        return outcome

    async def bind(self, member: dict, upline_id: str, source: BindSource, at: datetime,
                   created_by_this_push: bool = False, note: str | None = None,
                   template_id: str | None = None, origin: Origin | None = None) -> BindOutcome:
        """Bind `member` (its document as the caller just read it) under `upline_id`, or log why not.
        `template_id`: the poster template whose code or link brought the member, for the funnel.

        The first attempt decides on that document and on the upline as this
        process read it in the last seconds (most scans are of a few popular
        promoters' codes), and reads nothing: the write's guards check all the
        decision relied on. A failed guard, a refusal (before it is logged)
        and a member bringing a team are decided again on fresh reads.

        In the chain-move mode the bind is also a join (`_decide_join`),
        written in the same transaction. Concurrent joins through one inviter
        compete for its next position: in one process they take turns, and
        across processes a loser that finds the position taken lost to
        another's progress, which does not count as a failed attempt, so each
        of them binds whatever their number.
        """
        settings = await self.merchant_settings.get(BindingSettings)
        chain_settings = await self.merchant_settings.get(ChainMoveSettings)
        detail = {name: value for name, value in (("note", note), ("template", template_id)) if value} or None
        teams = chain_settings if chain_settings.enabled else None
        if self.risk is not None and origin is not None and (refusal := await self.risk.on_bind(
                upline_id, member, origin, at)) is not None:
            await self._refused(member["_id"], upline_id, source, refusal, at, detail)
            return BindOutcome.refused(refusal)
        async with self.bind_turns.one_at_a_time(member["_id"], *([upline_id] if teams else [])):
            return await self._bind(member, upline_id, source, at, created_by_this_push, detail, settings, teams)

    async def _bind(self, member: dict, upline_id: str, source: BindSource, at: datetime, created_by_this_push: bool,
                    detail: dict | None, settings: BindingSettings, teams: ChainMoveSettings | None) -> BindOutcome:
        member_id, upline = member["_id"], self.recent_uplines.get(upline_id)
        failures, first, lost_position = 0, True, None
        while failures < self.attempts:
            fresh = not first or upline is None or brings_team(member, teams)
            first, failures = False, failures + 1
            if fresh:
                found = await self.members.several([member_id, upline_id])
                member, upline = found[member_id], found.get(upline_id)
                self.recent_uplines.put(upline)
                if lost_position is not None and upline is not None and upline.get(REFERRAL_COUNT, 0) >= lost_position:
                    failures -= 1
                lost_position = None
            moves_version, owner_chain = None, None
            upline_now = await self.members.candidate(upline, settings) if upline else None
            if upline and brings_team(member, teams):
                # A member bringing a team could close a loop: check the upline's chains as they will be once
                # pending team rewrites are done, and let moves of teams commit one at a time.
                moves_version = await self.members.moves_version()
                upline_now = replace(upline_now, ancestor_ids=await self._current_chain(upline, "ancestor_ids"))
                if teams is not None:
                    owner_chain = await self._current_chain(upline, OWNER_IDS)
            decision: Bind | Refusal = decide_bind(snapshot(member), upline_now, settings, at, source,
                                                   created_by_this_push)
            joined: JoinWrite | Refusal | None = None
            if teams is not None and isinstance(decision, Bind):
                joined = await self._decide_join(member, upline, owner_chain, teams, created_by_this_push)
                if isinstance(joined, Refusal):
                    decision = joined
            if isinstance(decision, Refusal):
                if not fresh:
                    continue  # refuse only on what the database says now
                await self._refused(member_id, upline_id, source, decision.reason.value, at, detail)
                return BindOutcome.refused(decision.reason.value, upline)
            try:
                await self._write(decision, member, upline, detail, moves_version, joined)
            except Conflict:
                lost_position = joined.join.position if joined is not None else None
                continue
            if joined is not None:
                self.recent_uplines.put(_as_joined(upline, joined.join))
            await self._after_bind(member, teams is not None)
            return BindOutcome(True, upline=upline)
        await self._refused(member_id, upline_id, source, CONTENDED, at, detail)
        return BindOutcome.refused(CONTENDED, upline)

    async def log_page(self, member: dict, limit: int, before_id: str | None) -> list[dict]:
        """`member`'s bind attempts newest first, those the worker has still to log among them."""
        waiting = [entry for entry in self.members.binds_awaiting_follow_up(member)
                   if before_id is None or entry["_id"] < before_id]
        logged = await self.bind_log.page(member["_id"], limit, before_id)
        return sorted(waiting + logged, key=lambda entry: entry["_id"], reverse=True)[:limit]

    async def _refused(self, member_id: str, upline_id: str, source: BindSource, reason: str, at: datetime,
                       detail: dict | None) -> None:
        await self.bind_log.record(member_id=member_id, upline_id=upline_id, source=source.value, result="refused",
                                   reason=reason, at=at, detail=detail)

    async def _current_chain(self, member: dict, chain_field: str) -> tuple[str, ...]:
        """The member's ancestors (`chain_field` "ancestor_ids") or team owners ("owner_ids") once every pending
        team rewrite above it is done."""
        chain, moved, read = (member["_id"], *member.get(chain_field, ())), {}, set()
        while unread := [member_id for member_id in chain if member_id not in read]:
            moved.update(await self.members.pending_rewrites(unread, chain_field))
            read.update(unread)
            chain = current_chain(chain, moved)
        return chain[1:]

    async def _decide_join(self, member: dict, upline: dict, upline_owner_ids: tuple[str, ...] | None,
                           teams: ChainMoveSettings, created_by_this_push: bool) -> JoinWrite | Refusal:
        """The chain-move join of a bind the binding rules allowed, decided on the members as read.

        The roles of the inviter's team owners are read (one `$in`) only when
        the position may pass the member up. A member bringing a team is
        decided on the inviter's owner chain as it will be once pending
        rewrites are done (`upline_owner_ids`); a re-bound member's counters
        move from the owner chain it really leaves, read the same way.
        """
        inviter = chain_member(upline)
        if upline_owner_ids is not None:
            inviter = replace(inviter, owner_ids=upline_owner_ids)
        may_pass_up = inviter.role is Role.AGENT and inviter.referral_count + 1 in teams.pass_up_positions
        owner_roles = await self.roles.of(inviter.owner_ids) if may_pass_up else {}
        joining = replace(chain_member(member), role=joining_role(member, created_by_this_push))
        decision: JoinDecision = decide_join(joining, inviter, owner_roles, teams)
        if isinstance(decision, Refusal):
            return decision
        team_size = member.get(TEAM_SIZE, 0)
        leaves = await self._current_chain(member, OWNER_IDS) if member.get(OWNER_IDS) else ()
        return JoinWrite(decision, tuple(upline.get(OWNER_IDS, ())), team_size,
                         move_counter_deltas(leaves, decision.owner_ids, team_size).team_count)

    async def _write(self, bind: Bind, member: dict, upline: dict, detail: dict | None,
                     moves_version: int | None, joined: JoinWrite | None) -> None:
        team_size = member.get("team_count", 0)
        detail = {**(detail or {}), "new_member": member.get("nickname")}
        if joined is not None:
            join = joined.join
            detail.update(position=join.position, passed_up=join.passed_up, passed_to=join.passed_to,
                          team_owner_id=join.team_owner_id)
        entry = bind_entry(member_id=bind.member_id, upline_id=bind.upline_id,
                           previous_upline_id=bind.expected_upline_id, source=bind.source.value, result="bound",
                           at=bind.bound_at, detail=detail)
        writes = WriteSet()
        self.members.plan_bind(bind, snapshot(upline), team_size,
                               move_counter_deltas(bind.expected_ancestor_ids, bind.ancestor_ids, team_size), entry,
                               writes, moves_version, rewrite_team_now=not self._rewrites_later(member, joined is not None),
                               joined=joined)
        if joined is not None and joined.join.inviter_upgrades:
            self._plan_promotion(joined.join, writes, bind.bound_at)
        await commit(self.client, self.members.db, writes)

    def _rewrites_later(self, member: dict, chain_mode: bool) -> bool:
        """Whether the team a member brings is too large to have its chains rewritten in its bind's step: its
        descendants, and in the chain-move mode its owner team."""
        largest = max(member.get("team_count", 0), member.get(TEAM_SIZE, 0) if chain_mode else 0)
        return largest > self.inline_resync_limit

    def _plan_promotion(self, join: Join, writes: WriteSet, at: datetime) -> None:
        """The inviter's upgrade to a boss, in the join's step: recorded in its grade history, and told."""
        inviter_id = join.inviter_id
        reason = f"链动：直推满 {join.position} 人，由{ROLE_WORDS[Role.AGENT]}升级为{ROLE_WORDS[Role.BOSS]}"
        writes.insert(GRADE_CHANGES, [role_upgrade(inviter_id, Role.AGENT.value, Role.BOSS.value, at, reason,
                                                   {REFERRAL_COUNT: join.position})])
        notice = self.notifications.member_record(
            PROMOTED_TO_BOSS, f"{PROMOTED_TO_BOSS}:{inviter_id}", inviter_id,
            {"role": ROLE_WORDS[Role.BOSS], "referrals": join.position, "time": china_time(at)}, at)
        writes.insert(NOTIFICATIONS, [notice])
        writes.then(lambda: self.notifications.enqueue([notice["_id"]]))

    async def apply_follow_ups(self, batch: int = 500) -> int:
        """What binds leave to the worker (every second), done once per bind: their bind log entry, the
        counters of the ancestors above each new upline, and the upline's notice of a new direct member.

        A bind records all three on the member it binds, in its own guarded
        update, which keeps the bind to two document updates at any depth.
        One transaction here takes a batch of them off their members, logs
        them, adds their counter changes up into one `$inc` per member (so a
        popular tree's root is written once a batch, not by every bind) and
        records their notices, queued for sending once it commits. Returns how
        many binds were followed up.
        """
        # One applier at a time across processes: two would only conflict on the same binds.
        async with held_once(self.queue.redis, f"{self.queue.stream}:bind-follow-ups", 30) as held:
            return await self._follow_up_batches(batch) if held else 0

    async def _follow_up_batches(self, batch: int) -> int:
        applied = 0
        while members := await self.members.with_binds_to_follow_up(batch):
            writes = WriteSet()
            binds = [pending for member in members for pending in self.members.plan_binds_followed_up(member, writes)]
            totals: dict[str, Counter] = defaultdict(Counter)
            newest: dict[str, datetime] = {}
            for pending in binds:
                for member_id, increments in pending.counter_deltas.items():
                    totals[member_id].update(increments)
                    newest[member_id] = max(pending.entry["at"], newest.get(member_id, pending.entry["at"]))
            self.members.plan_counter_deltas({m: {k: v for k, v in c.items() if v} for m, c in totals.items()},
                                             newest, writes)
            writes.insert(BIND_LOG, [pending.entry for pending in binds])
            notices = await self._notices(pending.entry for pending in binds)
            writes.insert(NOTIFICATIONS, notices)
            writes.then(lambda: self.notifications.enqueue([notice["_id"] for notice in notices]))
            try:
                with pymongo.timeout(FOLLOW_UP_COMMIT_SECONDS):
                    await commit(self.client, self.members.db, writes)
            except Conflict:
                continue  # a member bound again meanwhile (or another applier): read what is left
            applied += len(binds)
        return applied

    async def _notices(self, entries: Iterable[dict]) -> list[dict]:
        """Each upline's notice of a new direct member, with the team size it has now."""
        entries = list(entries)
        uplines = await self.members.several(sorted({entry["upline_id"] for entry in entries}))
        return [self.notifications.member_record(
            NEW_DIRECT_MEMBER, f"bind:{entry['_id']}", entry["upline_id"],
            {"member": thing(entry.get("new_member"), UNNAMED_MEMBER),
             "team": uplines.get(entry["upline_id"], {}).get("team_count", 0), "time": china_time(entry["at"])},
            entry["at"]) for entry in entries]

    async def _after_bind(self, member: dict, chain_mode: bool) -> None:
        if self._rewrites_later(member, chain_mode):
            await self.queue.enqueue(RESYNC_JOB, {"member_id": member["_id"]})

    async def resync(self, member_id: str) -> int:
        member = await self.members.get(member_id)
        if member is None or not member.get("subtree_stale"):
            return 0
        return await self.members.resync_subtree(member, self.resync_batch)

    async def requeue_stale_subtrees(self) -> int:
        """The outbox sweep of subtree rewrites: those whose job was lost (a crash after the commit) go again."""
        stale = await self.members.stale_subtrees(limit=100)
        for member in stale:
            await self.queue.enqueue(RESYNC_JOB, {"member_id": member["_id"]})
        return len(stale)

    async def set_frozen(self, member_id: str, frozen: bool) -> dict:
        """Freeze or unfreeze the member; returns it as it is now (MemberNotFound when there is none)."""
        if not await self.members.set_frozen(member_id, frozen):
            raise MemberNotFound(f"no member {member_id}")
        return await self.members.get(member_id)


def _as_joined(upline: dict, join: Join) -> dict:
    """The inviter's document as a join left it: its next join may then be decided without reading it."""
    return {**upline, REFERRAL_COUNT: join.position, **({ROLE: Role.BOSS.value} if join.inviter_upgrades else {})}
