"""Binding members to the promoter whose code they scanned, and reading teams.

A bind reads the member and the would-be upline in one query, lets the
domain's rules decide, and writes the relation, both counters and the bind
log entry in one transaction whose updates are conditional on what was read.
When another attempt changed either member first, the transaction finds
nothing to update and the attempt is decided again on fresh data — so a
hundred concurrent scans bind exactly one upline, and two members binding
under each other at once cannot make a cycle.

A member that brings a team along is a move of a whole subtree, the only
kind of bind that can close a loop through members other than the two it
writes (A with a, B with b: A under b while B under a). Such moves also bump
one shared count of moves, so they commit one at a time, and their cycle
check reads the upline's chain as it will be once pending rewrites are done.

What a bind leaves for later — the counters of the ancestors above the
upline, and the upline's notice of a new direct member — is recorded in its
log entry, in the same transaction, and carried out once by the worker
(`apply_follow_ups`, every second): the bind itself stays two updates and an
insert at any depth, and a popular tree's root is written once a batch.

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
from dataclasses import dataclass, replace
from collections import Counter, defaultdict
from datetime import datetime

import pymongo

from pymongo import AsyncMongoClient

from distribution.binding import Bind, BindingSettings, BindSource, Refusal, decide_bind
from distribution.scene import parse_promoter_scene
from distribution.tree import current_chain, move_counter_deltas
from services.merchant_settings import MerchantSettings
from services.notifications import NotificationService, china_time
from stores.bind_log import BIND_LOG, DONE, PENDING, BindLog, bind_entry
from stores.job_queue import JobQueue
from stores.members import MemberStore, snapshot
from stores.notifications import NOTIFICATIONS
from stores.writes import Conflict, WriteSet, commit

log = logging.getLogger(__name__)

# Refusals the service adds to the domain's: the scene named no promoter, or
# the member kept changing under us.
MALFORMED_SCENE = "malformed_scene"
CONTENDED = "contended"

RESYNC_JOB = "resync_subtree"
FOLLOW_UP_COMMIT_SECONDS = 10.0
NEW_DIRECT_MEMBER = "new_direct_member"
UNNAMED_MEMBER = "新成员"


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
                 inline_resync_limit: int = 1000, resync_batch: int = 1000):
        self.client = client
        self.notifications = notifications
        self.members = members
        self.bind_log = bind_log
        self.merchant_settings = merchant_settings
        self.queue = queue
        self.inline_resync_limit = inline_resync_limit
        self.resync_batch = resync_batch

    async def bind_scene(self, member_id: str, scene: str | None, source: BindSource, at: datetime,
                         created_by_this_push: bool) -> BindOutcome:
        """A scan or share carrying `scene`; a scene that names no promoter is logged and refused."""
        upline_id = parse_promoter_scene(scene)
        if upline_id is None:
            await self.bind_log.record(member_id=member_id, upline_id=None, source=source.value, result="refused",
                                       reason=MALFORMED_SCENE, at=at, detail={"scene": (scene or "")[:128]})
            return BindOutcome.refused(MALFORMED_SCENE)
        return await self.bind(member_id, upline_id, source, at, created_by_this_push)

    async def bind(self, member_id: str, upline_id: str, source: BindSource, at: datetime,
                   created_by_this_push: bool = False, note: str | None = None) -> BindOutcome:
        settings = await self.merchant_settings.get(BindingSettings)
        detail = {"note": note} if note else None
        upline = None
        for _ in range(self.attempts):
            found = await self.members.several([member_id, upline_id])
            member, upline = found[member_id], found.get(upline_id)
            moves_version, upline_now = None, snapshot(upline) if upline else None
            if upline and member.get("team_count", 0):
                # A member bringing a team could close a loop: check the upline's chain as it will be once
                # pending team rewrites are done, and let moves of teams commit one at a time.
                moves_version = await self.members.moves_version()
                upline_now = replace(upline_now, ancestor_ids=await self._current_chain(upline))
            decision = decide_bind(snapshot(member), upline_now, settings, at, source, created_by_this_push)
            if isinstance(decision, Refusal):
                await self._refused(member_id, upline_id, source, decision.reason.value, at, detail)
                return BindOutcome.refused(decision.reason.value, upline)
            try:
                await self._write(decision, member, upline, detail, moves_version)
            except Conflict:
                continue
            await self._after_bind(member)
            return BindOutcome(True, upline=upline)
        await self._refused(member_id, upline_id, source, CONTENDED, at, detail)
        return BindOutcome.refused(CONTENDED, upline)

    async def _refused(self, member_id: str, upline_id: str, source: BindSource, reason: str, at: datetime,
                       detail: dict | None) -> None:
        await self.bind_log.record(member_id=member_id, upline_id=upline_id, source=source.value, result="refused",
                                   reason=reason, at=at, detail=detail)

    async def _current_chain(self, upline: dict) -> tuple[str, ...]:
        """The upline's ancestors once every pending team rewrite above it is done."""
        chain, moved, read = (upline["_id"], *upline["ancestor_ids"]), {}, set()
        while unread := [member_id for member_id in chain if member_id not in read]:
            moved.update(await self.members.pending_rewrites(unread))
            read.update(unread)
            chain = current_chain(chain, moved)
        return chain[1:]

    async def _write(self, bind: Bind, member: dict, upline: dict, detail: dict | None,
                     moves_version: int | None) -> None:
        team_size = member.get("team_count", 0)
        writes = WriteSet()
        deferred = self.members.plan_bind(
            bind, snapshot(upline), team_size,
            move_counter_deltas(bind.expected_ancestor_ids, bind.ancestor_ids, team_size), writes,
            moves_version, rewrite_team_now=team_size <= self.inline_resync_limit)
        # What the worker does after the commit (`apply_follow_ups`): the counters above the upline, the notice.
        follow_up = {"follow_up": PENDING, "counter_deltas": deferred,
                     "notice": {"member": member.get("nickname") or UNNAMED_MEMBER,
                                "team": upline.get("team_count", 0) + 1 + team_size}}
        writes.insert(BIND_LOG, [bind_entry(member_id=bind.member_id, upline_id=bind.upline_id,
                                            previous_upline_id=bind.expected_upline_id, source=bind.source.value,
                                            result="bound", at=bind.bound_at, detail={**(detail or {}), **follow_up})])
        await commit(self.client, self.members.collection.database, writes)

    async def apply_follow_ups(self, batch: int = 500) -> int:
        """What binds leave to the worker (every second), done once per bind: the counters of the
        ancestors above each new upline, and the upline's notice of a new direct member.

        Binds record both in their log entry, which keeps the bind itself to
        two document updates and one insert. One transaction here marks a batch
        of entries done, adds their counter changes up into one `$inc` per
        member (so a popular tree's root is written once a batch, not by every
        bind) and records their notices, queued for sending once it commits.
        Returns how many binds were followed up.
        """
        # One applier at a time across processes: two would only conflict on the same entries.
        lock = self.queue.redis.lock(f"{self.queue.stream}:bind-follow-ups", timeout=30, blocking=False)
        if not await lock.acquire():
            return 0
        try:
            return await self._follow_up_batches(batch)
        finally:
            await lock.release()

    async def _follow_up_batches(self, batch: int) -> int:
        applied = 0
        while entries := await self.bind_log.pending_follow_ups(batch):
            writes = WriteSet()
            totals: dict[str, Counter] = defaultdict(Counter)
            newest: dict[str, datetime] = {}
            notices = []
            for entry in entries:
                writes.guard(BIND_LOG, {"_id": entry["_id"], "follow_up": PENDING}, {"$set": {"follow_up": DONE}})
                for member_id, increments in entry["counter_deltas"].items():
                    totals[member_id].update(increments)
                    newest[member_id] = max(entry["at"], newest.get(member_id, entry["at"]))
                notices.append(self.notifications.member_record(
                    NEW_DIRECT_MEMBER, f"bind:{entry['_id']}", entry["upline_id"],
                    {**entry["notice"], "time": china_time(entry["at"])}, entry["at"]))
            self.members.plan_counter_deltas({m: {k: v for k, v in c.items() if v} for m, c in totals.items()},
                                             newest, writes)
            writes.insert(NOTIFICATIONS, notices)
            writes.then(lambda: self.notifications.enqueue([notice["_id"] for notice in notices]))
            try:
                with pymongo.timeout(FOLLOW_UP_COMMIT_SECONDS):
                    await commit(self.client, self.members.collection.database, writes)
            except Conflict:
                continue  # some were applied meanwhile (a lock that outlived its holder): read what is left
            applied += len(entries)
        return applied

    async def _after_bind(self, member: dict) -> None:
        if member.get("team_count", 0) > self.inline_resync_limit:
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

    async def set_frozen(self, member_id: str, frozen: bool) -> bool:
        return await self.members.set_frozen(member_id, frozen)
