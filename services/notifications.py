"""Notifications to promoters and to the merchant's admins, sent by the worker with retries.

Anything in the app tells someone something with `notify` (a member) or
`notify_admins` (the openids in MERCHANT_ADMIN_OPENIDS), naming a kind and an
idempotency key, e.g. `commission_arrived:<order_no>:<member_id>`. That
records a `notifications` document and queues a send job; a step that must
notify exactly when it commits puts `member_record`/`admin_records` in its
own transaction instead and queues the jobs after the commit (`enqueue`). A
record whose job was lost (a crash between commit and enqueue) is queued
again by the sweep (`requeue_due`).

A kind is a line in `KINDS` (who it is for) plus its templates in
`settings.NOTIFY_TEMPLATES` (template ids and field names per channel); a
kind with no template configured is recorded and skipped.

Sending, once per record however often its job runs: the job locks its
records in Redis (one lock each, taken in one round trip, for LEASE), reads
those still pending, picks each one's channel (a consent taken is kept on
the record, so a retry uses it and takes no other), sends SENDS_AT_ONCE at a
time, and marks each group's outcomes in one write, before the locks are
given back. The locks live in Redis rather than on the records: on a
record, taking one was a write of its own before every send, as costly on
SecantusDB as the outcome's. A worker killed between a
group's sends and their record re-sends those (at most SENDS_AT_ONCE
messages) when the job is redone: the one window at-least-once leaves at the
WeChat boundary, the price of not waiting on WeChat's answers one by one.
Redis restarted empty while a worker sends opens the same window for the
records it holds (a sweep may queue them again meanwhile).

- Promoters: a mini-program subscription message when they hold an unused
  consent for its template (the consent is used up by the send, also when
  WeChat refuses it), else an official-account subscription notification
  (bizsend), else a template message. No openid for any configured channel:
  `skipped`.
- Admins: a template message.
- 43101 (the user refused): `refused`, not retried. Rate limits: retried
  later without counting an attempt. Other failures: retried with backoff,
  `failed` after `MAX_ATTEMPTS`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from typing import Any, Mapping

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from distribution.money import yuan
from wechat import WeChatClient
from wechat.errors import WeChatError, WeChatRateLimited, WeChatRefused
from settings import NotifyTemplate, Settings
from stores.job_queue import JobQueue, RetryLater
from stores.locks import those_free
from stores.members import MemberStore
from stores.notifications import NOTIFICATIONS, NotificationStore, finished, to_retry

log = logging.getLogger(__name__)

SEND_JOB = "notifications.send"
LEASE = timedelta(seconds=60)  # the most a sender holds a record's lock: a dead one's frees itself then
# A pending record not sent by then had its job lost: the sweep queues it again.
SWEEP_AFTER = timedelta(minutes=5)
MAX_ATTEMPTS = 8
SWEEP_BATCH = 20  # notifications per requeued job: sent well within one lease
CLAIM_BATCH = 64  # notifications locked at once: sent well within LEASE
# Sends waiting on WeChat at the same time. A worker's job loop waits for its notifications before its next
# batch of orders: with WeChat answering in 100 ms, groups of 8 held a worker's drain of a burst (four
# notifications per paid order) to a third of its pace. The price: a worker killed mid-group sends that group
# again.
SENDS_AT_ONCE = 32
RATE_LIMIT_BACKOFF_SECONDS = 60.0


class Audience(StrEnum):
    PROMOTER = "promoter"
    ADMIN = "admin"


# Kind -> who it is for. A new kind is a line here and its templates in settings.
KINDS: dict[str, Audience] = {
    "commission_arrived": Audience.PROMOTER,
    "commission_settled": Audience.PROMOTER,
    "new_order_admin": Audience.ADMIN,
    "withdrawal_paid": Audience.PROMOTER,
    "withdrawal_rejected": Audience.PROMOTER,
    "withdrawal_returned": Audience.PROMOTER,
    "withdrawal_requested_admin": Audience.ADMIN,
    "application_decided": Audience.PROMOTER,
    "new_direct_member": Audience.PROMOTER,
    "promoted_to_boss": Audience.PROMOTER,  # the chain-move mode: an agent's referrals made it a boss
    "tax_declare_reminder": Audience.PROMOTER,  # a year's income paid out passed the merchant's threshold
    "fraud_flag": Audience.ADMIN,  # a risk rule flagged a promoter (services.risk)
}


class Status(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    REFUSED = "refused"  # 43101: the user refused; not retried
    SKIPPED = "skipped"  # no channel reaches the recipient
    FAILED = "failed"  # gave up after MAX_ATTEMPTS


# What a WeChat "thing" field (a short text: a note, a name, a product) holds.
THING_LENGTH = 20


def thing(text: str | None, otherwise: str) -> str:
    """`text` cut to what a "thing" field holds, or `otherwise` when it is blank (WeChat refuses empty fields)."""
    return ((text or "").strip() or otherwise)[:THING_LENGTH]


class NotificationService:
    def __init__(self, db: AsyncDatabase, queue: JobQueue, oa: WeChatClient, miniapp: WeChatClient,
                 settings: Settings):
        self.store = NotificationStore(db)
        self.members = MemberStore(db)
        self.queue = queue
        self.oa = oa
        self.miniapp = miniapp
        self.settings = settings

    # --- recording -------------------------------------------------------------------------------

    def member_record(self, kind: str, key: str, member_id: str, data: Mapping[str, Any], now: datetime) -> dict:
        self._check_kind(kind, Audience.PROMOTER)
        return self._record(kind, key, Audience.PROMOTER, data, now, member_id=member_id)

    def admin_records(self, kind: str, key: str, data: Mapping[str, Any], now: datetime) -> list[dict]:
        """One record per admin openid, keyed `<key>:<openid>`; none when the kind's template is turned off
        (`NOTIFY_TEMPLATES`): an admin is reached by that template alone, so its records would all be skipped, two
        writes each for every paid order of a sale day."""
        self._check_kind(kind, Audience.ADMIN)
        if self._admin_template(kind) is None:
            return []
        return [self._record(kind, f"{key}:{openid}", Audience.ADMIN, data, now, openid=openid)
                for openid in self.settings.merchant_admin_openids]

    async def notify(self, kind: str, key: str, member_id: str, data: Mapping[str, Any],
                     now: datetime | None = None) -> bool:
        """Record and queue a notification to a member; False when `key` was recorded already."""
        new = await self.store.insert([self.member_record(kind, key, member_id, data, now or _now())])
        await self.enqueue(new)
        return bool(new)

    async def notify_admins(self, kind: str, key: str, data: Mapping[str, Any], now: datetime | None = None) -> int:
        new = await self.store.insert(self.admin_records(kind, key, data, now or _now()))
        await self.enqueue(new)
        return len(new)

    async def enqueue(self, notification_ids: list[str]) -> None:
        """One job sends them all (a step's notifications go together)."""
        if notification_ids:
            await self.queue.enqueue(SEND_JOB, {"ids": list(notification_ids)})

    async def add_consents(self, member_id: str, template_ids: list[str], now: datetime | None = None) -> None:
        """The member accepted these mini-program subscription templates (one send each)."""
        await self.store.add_consents(member_id, [each for each in template_ids if each], now or _now())

    async def unused_consents(self, member_id: str, template_id: str) -> int:
        return await self.store.unused_consents(member_id, template_id)

    async def requeue_due(self, now: datetime | None = None, limit: int = 500) -> int:
        """The outbox sweep: pending records whose job was lost are queued again."""
        now = now or _now()
        due = await self.store.due(await self.queue.sweep_cutoff(now, SWEEP_AFTER), limit)
        await self.store.postpone(due, now + SWEEP_AFTER)
        for start in range(0, len(due), SWEEP_BATCH):
            await self.enqueue(due[start:start + SWEEP_BATCH])
        return len(due)

    # --- sending ---------------------------------------------------------------------------------

    async def send(self, notification_id: str, now: datetime | None = None) -> str | None:
        """Send one recorded notification (unless done, or another worker holds it); its status after."""
        done = await self.send_many([notification_id], now)
        if notification_id in done:
            return done[notification_id]
        record = await self.store.get(notification_id)
        return record["status"] if record else None

    async def send_many(self, notification_ids: list[str], now: datetime | None = None) -> dict[str, str]:
        """Send those of the notifications that are pending and free; returns their statuses after.

        A constant handful of commands per CLAIM_BATCH of them: one Redis round
        trip takes their locks, one read returns the records, one read their
        members, one more round trip gives the locks back. They are sent
        SENDS_AT_ONCE at a time (WeChat's answer is most of a send's time),
        each group followed by the one write that records its outcomes: a
        worker killed mid-batch re-sends at most the messages of the group it
        was sending.
        """
        now = now or _now()
        sending = _Sending()
        for start in range(0, len(notification_ids), CLAIM_BATCH):
            await self._send_claimed(notification_ids[start:start + CLAIM_BATCH], now, sending)
        if sending.rate_limited is not None:
            raise RetryLater(RATE_LIMIT_BACKOFF_SECONDS, str(sending.rate_limited)) from sending.rate_limited
        if sending.failure is not None:
            raise sending.failure
        return sending.statuses

    async def _send_claimed(self, notification_ids: list[str], now: datetime, sending: _Sending) -> None:
        locks = {f"{self.settings.redis_prefix}notification:{each}": each for each in notification_ids}
        async with those_free(self.queue.redis, list(locks), LEASE.total_seconds()) as taken:
            if taken:
                await self._send_held(await self.store.pending([locks[lock] for lock in taken]), now, sending)

    async def _send_held(self, records: list[dict], now: datetime, sending: _Sending) -> None:
        if not records:
            return
        member_ids = [record["member_id"] for record in records if record.get("member_id")]
        members = await self.members.several(member_ids) if member_ids else {}
        for start in range(0, len(records), SENDS_AT_ONCE):
            group = records[start:start + SENDS_AT_ONCE]
            try:
                results = await asyncio.gather(*(self._deliver(record, members, now) for record in group),
                                               return_exceptions=True)
            except BaseException as crash:  # cancelled: whatever this group sent is sent again by the retry
                await self.store.record([to_retry(record["_id"], f"{type(crash).__name__}: {crash}", counted=False)
                                         for record in records[start:]])
                raise
            attempts = [to_retry(record["_id"], f"{type(result).__name__}: {result}", counted=False)
                        if _unexpected(result) else self._outcome(record, result, sending)
                        for record, result in zip(group, results)]
            crash = next((result for result in results if _unexpected(result)), None)
            if crash is not None:  # the rest are left for the retry
                attempts += [to_retry(record["_id"], f"{type(crash).__name__}: {crash}", counted=False)
                             for record in records[start + len(group):]]
            await self.store.record(attempts)
            if crash is not None:
                raise crash

    def _outcome(self, record: dict, result: tuple | WeChatError, sending: _Sending) -> UpdateOne:
        """What becomes of one attempt to send `record`, noted in `sending`: its write."""
        notification_id = record["_id"]
        if isinstance(result, WeChatRateLimited):
            sending.rate_limited = result
            sending.statuses[notification_id] = Status.PENDING
            return to_retry(notification_id, str(result), counted=False)
        if isinstance(result, WeChatError):
            if record.get("attempts", 0) + 1 >= MAX_ATTEMPTS:  # this one included
                sending.statuses[notification_id] = Status.FAILED
                return finished(notification_id, Status.FAILED, _now(), error=str(result))
            sending.failure = result
            sending.statuses[notification_id] = Status.PENDING
            return to_retry(notification_id, str(result), counted=True)
        status, channel, template_id, error = result
        sending.statuses[notification_id] = status
        return finished(notification_id, status, _now(), channel, template_id, error)

    async def _deliver(self, record: dict, members: Mapping[str, dict],
                       now: datetime) -> tuple[Status, str | None, str | None, str | None]:
        """(status, channel, template id, error) of one attempt to send `record`."""
        if record["audience"] == Audience.ADMIN:
            template = self._admin_template(record["kind"])
            if template is None:
                return Status.SKIPPED, None, None, "no template configured"
            await self.oa.message.send_template(record["openid"], template.template_id, template.render(record["data"]))
            return Status.SENT, "template", template.template_id, None
        templates = self.settings.notify_templates.get(record["kind"], {})
        member = members.get(record["member_id"])
        if member is None:
            return Status.SKIPPED, None, None, "no such member"
        channel = record.get("channel")
        if channel is None:
            channel = await self._choose_channel(record, member, templates, now)
            if channel is None:
                return Status.SKIPPED, None, None, "no channel reaches the member"
        template = templates.get(channel) or NotifyTemplate(record["template_id"], ())
        data = template.render(record["data"])
        try:
            if channel == "miniapp":
                await self.miniapp.miniapp.send_subscribe(member["miniapp_openid"], template.template_id, data)
            elif channel == "bizsend":
                await self.oa.message.send_subscription(member["oa_openid"], template.template_id, data)
            else:
                await self.oa.message.send_template(member["oa_openid"], template.template_id, data)
        except WeChatRefused as refused:
            return Status.REFUSED, channel, template.template_id, str(refused)
        return Status.SENT, channel, template.template_id, None

    async def _choose_channel(self, record: dict, member: dict, templates: Mapping[str, NotifyTemplate],
                              now: datetime) -> str | None:
        """A consent taken is recorded on the record at once, so that a retry sends on it and takes no other."""
        consent_template = templates.get("miniapp")
        if consent_template and member.get("miniapp_openid") and await self.store.take_consent(
                member["_id"], consent_template.template_id, now):
            await self.store.set_channel(record["_id"], "miniapp", consent_template.template_id, consent_taken=True)
            return "miniapp"
        if member.get("oa_openid"):
            for channel in ("bizsend", "template"):
                if channel in templates:
                    return channel
        return None

    # --- helpers ---------------------------------------------------------------------------------

    def _admin_template(self, kind: str) -> NotifyTemplate | None:
        """What reaches an admin with a notice of `kind`: its template message, unless turned off."""
        return self.settings.notify_templates.get(kind, {}).get("template")

    def _record(self, kind: str, key: str, audience: Audience, data: Mapping[str, Any], now: datetime,
                member_id: str | None = None, openid: str | None = None) -> dict:
        # WeChat refuses a message with an empty field, after the step that notifies has committed.
        empty = [name for name, value in data.items() if not str(value).strip()]
        if empty:
            raise ValueError(f"{kind} notification {key}: empty field(s) {', '.join(empty)}")
        return {
            "_id": key,
            "kind": kind,
            "audience": audience.value,
            "member_id": member_id,
            "openid": openid,
            "data": {name: str(value) for name, value in data.items()},
            "status": Status.PENDING.value,
            "channel": None,
            "template_id": None,
            "consent_taken": False,
            "attempts": 0,
            "created_at": now,
            "retry_at": now + SWEEP_AFTER,
        }

    @staticmethod
    def _check_kind(kind: str, audience: Audience) -> None:
        if KINDS.get(kind) is not audience:
            raise ValueError(f"{kind!r} is not a notification kind for {audience.value}s; see KINDS")


def _unexpected(result: object) -> bool:
    """An attempt that ended in an error other than WeChat's answer (a bug, a database error, a cancellation)."""
    return isinstance(result, BaseException) and not isinstance(result, WeChatError)


@dataclass
class _Sending:
    """How a `send_many` goes: the statuses so far, and the last rate limit or failure that asks for a retry."""

    statuses: dict[str, str] = field(default_factory=dict)
    rate_limited: WeChatRateLimited | None = None
    failure: WeChatError | None = None


def _now() -> datetime:
    return datetime.now(timezone.utc)


__all__ = ["KINDS", "NOTIFICATIONS", "SEND_JOB", "Audience", "NotificationService", "Status", "thing", "yuan"]
