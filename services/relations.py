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
from distribution.scene import parse_scene
from distribution.tree import current_chain, move_counter_deltas
from services.funnel import FunnelService
from services.members import MemberNotFound
from services.merchant_settings import MerchantSettings
from services.notifications import NotificationService, thing
from stores.bind_log import BIND_LOG, BindLog, bind_entry
from stores.job_queue import JobQueue
from stores.locks import held_once
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
                 inline_resync_limit: int = 1000, resync_batch: int = 1000):
        self.client = client
        self.notifications = notifications
        self.members = members
        self.bind_log = bind_log
        self.merchant_settings = merchant_settings
        self.queue = queue
        self.inline_resync_limit = inline_resync_limit
        self.recent_uplines = RecentUplines()
        self.resync_batch = resync_batch
        self.funnel = FunnelService(members.db, merchant_settings)

    async def bind_scene(self, member: dict, scene: str | None, source: BindSource, at: datetime,
                         created_by_this_push: bool) -> BindOutcome:
        """A scan carrying `scene`; a scene that names no promoter is logged and refused. A scan of an existing
        promoter's code counts in the funnel, bound or not."""
        scanned = parse_scene(scene)
        if scanned is None:
            await self.bind_log.record(member_id=member["_id"], upline_id=None, source=source.value,
                                       result="refused", reason=MALFORMED_SCENE, at=at,
                                       detail={"scene": (scene or "")[:128]})
            return BindOutcome.refused(MALFORMED_SCENE)
        template_id = await self.funnel.offered_template(scanned.template_id)
        outcome = await self.bind(member, scanned.member_id, source, at, created_by_this_push,
                                  template_id=template_id)
        if outcome.upline is not None:
            await self.funnel.scanned(scanned.member_id, template_id, at)
        return outcome

    async def bind(self, member: dict, upline_id: str, source: BindSource, at: datetime,
                   created_by_this_push: bool = False, note: str | None = None,
                   template_id: str | None = None) -> BindOutcome:
        """Bind `member` (its document as the caller just read it) under `upline_id`, or log why not.
        `template_id`: the poster template whose code or link brought the member, for the funnel.

        The first attempt decides on that document and on the upline as this
        process read it in the last seconds (most scans are of a few popular
        promoters' codes), and reads nothing: the write's guards check all the
        decision relied on. A failed guard, a refusal (before it is logged)
        and a member bringing a team are decided again on fresh reads.
        """
        settings = await self.merchant_settings.get(BindingSettings)
        detail = {name: value for name, value in (("note", note), ("template", template_id)) if value} or None
        member_id, upline = member["_id"], self.recent_uplines.get(upline_id)
        for attempt in range(self.attempts):
            fresh = attempt > 0 or upline is None or member.get("team_count", 0) > 0
            if fresh:
                found = await self.members.several([member_id, upline_id])
                member, upline = found[member_id], found.get(upline_id)
                self.recent_uplines.put(upline)
            moves_version, upline_now = None, snapshot(upline) if upline else None
            if upline and member.get("team_count", 0):
                # A member bringing a team could close a loop: check the upline's chain as it will be once
                # pending team rewrites are done, and let moves of teams commit one at a time.
                moves_version = await self.members.moves_version()
                upline_now = replace(upline_now, ancestor_ids=await self._current_chain(upline))
            decision = decide_bind(snapshot(member), upline_now, settings, at, source, created_by_this_push)
            if isinstance(decision, Refusal):
                if not fresh:
                    continue  # refuse only on what the database says now
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
        entry = bind_entry(member_id=bind.member_id, upline_id=bind.upline_id,
                           previous_upline_id=bind.expected_upline_id, source=bind.source.value, result="bound",
                           at=bind.bound_at, detail={**(detail or {}), "new_member": member.get("nickname")})
        writes = WriteSet()
        self.members.plan_bind(bind, snapshot(upline), team_size,
                               move_counter_deltas(bind.expected_ancestor_ids, bind.ancestor_ids, team_size), entry,
                               writes, moves_version, rewrite_team_now=team_size <= self.inline_resync_limit)
        await commit(self.client, self.members.db, writes)

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

    async def set_frozen(self, member_id: str, frozen: bool) -> dict:
        """Freeze or unfreeze the member; returns it as it is now (MemberNotFound when there is none)."""
        if not await self.members.set_frozen(member_id, frozen):
            raise MemberNotFound(f"no member {member_id}")
        return await self.members.get(member_id)
