"""Risk flags, and the evidence the risk rules read, in MongoDB and Redis.

- `risk_flags`: `{_id, key: "<rule>:<subject>" (unique: a repeated event flags once), rule, member_id, subject,
  evidence, action, status: open | cleared | voided, created_at, updated_at, decided_at, reason, buyer_id (a
  self-referral's buyer, who is then linked to the promoter), held_commission_ids, rejected_commissions:
  [{beneficiary_id, level, item_index, amount_fen}], withdrawal_id}`. `_id`s ascend with time, so lists go
  newest first by `_id`.
- Members keep `device_hash` and `login_ip_hash` (keyed hashes of the device id and address of their last
  mini-program login) beside what identifies them already.
- Commissions a hold keeps from settling name its flags in `held_by`; so do withdrawals it keeps waiting.
- Bind velocity: a Redis sorted set per promoter and origin of the binds' times within the window.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import UpdateMany, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from distribution.risk import Action, FlagStatus, Rule, Signal
from stores.coalesced import Coalesced
from stores.members import MEMBERS
from stores.orders import COMMISSIONS, HELD_BY
from stores.rate_limits import REDIS_NOW_MS
from stores.stats import PROMOTER_DAILY

RISK_FLAGS = "risk_flags"
IDENTITY_FIELDS = {"upline_id": 1, "unionid": 1, "phone_sealed": 1, "device_hash": 1, "login_ip_hash": 1,
                   "oa_openid": 1, "miniapp_openid": 1}

# KEYS[1]: the sorted set of binds' times; ARGV: this bind's id, the window (ms). Every bind is recorded (unlike
# a rate limit's refused hit) and the count returned, on Redis's clock.
_COUNT_BIND = REDIS_NOW_MS + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return redis.call('ZCARD', KEYS[1])
"""


def flag_document(signal: Signal, now: datetime, **fields: Any) -> dict:
    return {"_id": str(ObjectId()), "key": signal.key, "rule": signal.rule.value, "member_id": signal.member_id,
            "subject": signal.subject, "evidence": dict(signal.evidence), "action": signal.action.value,
            "status": FlagStatus.OPEN.value, "created_at": now, "updated_at": now, "decided_at": None,
            "reason": None, "held_commission_ids": [], "rejected_commissions": [], "withdrawal_id": None,
            "buyer_id": signal.evidence.get("buyer_id"), **fields}


def hold_commissions(flag_ids: Sequence[str], commission_ids: Sequence[str]) -> UpdateMany:
    return UpdateMany({"_id": {"$in": list(commission_ids)}}, {"$addToSet": {HELD_BY: {"$each": list(flag_ids)}}})


def release(flag_id: str) -> UpdateMany:
    """Commissions or withdrawals `flag_id` held are no longer held by it."""
    return UpdateMany({HELD_BY: flag_id}, {"$pull": {HELD_BY: flag_id}})


def decided(flag: dict, status: FlagStatus, reason: str, now: datetime) -> tuple[dict, dict]:
    """The guard (still open) and the update of deciding `flag`."""
    return ({"_id": flag["_id"], "status": FlagStatus.OPEN.value},
            {"$set": {"status": status.value, "reason": reason, "decided_at": now, "updated_at": now}})


def add_to_flag(flag_key: str, commission_ids: Sequence[str], rejected: Sequence[dict], now: datetime) -> UpdateOne:
    """A flag raised before takes this event's commissions too."""
    return UpdateOne({"key": flag_key}, {"$addToSet": {"held_commission_ids": {"$each": list(commission_ids)},
                                                       "rejected_commissions": {"$each": list(rejected)}},
                                         "$set": {"updated_at": now}})


class RiskStore:
    def __init__(self, db: AsyncDatabase, redis: Redis, redis_prefix: str):
        self.db = db
        self.flags = db[RISK_FLAGS]
        self.members = db[MEMBERS]
        self.promoter_days = db[PROMOTER_DAILY]
        self.redis = redis
        self.velocity_prefix = f"{redis_prefix}risk:binds:"
        self._count_bind = redis.register_script(_COUNT_BIND)
        # A batch of orders planned side by side reads these once for all its orders.
        self._identities: Coalesced[str, dict] = Coalesced(self._load_identities)
        self._days: Coalesced[tuple[str, str, str], dict[str, dict]] = Coalesced(self._load_days)

    # flags

    async def get(self, flag_id: str) -> dict | None:
        return await self.flags.find_one({"_id": flag_id})

    async def existing_keys(self, keys: Sequence[str]) -> dict[str, str]:
        """Key -> id of the flags of `keys` raised before."""
        if not keys:
            return {}
        return {flag["key"]: flag["_id"] async for flag in self.flags.find({"key": {"$in": list(keys)}}, {"key": 1})}

    async def insert_once(self, document: dict) -> bool:
        """False when a flag of that key was raised before."""
        result = await self.flags.update_one({"key": document["key"]}, {"$setOnInsert": document}, upsert=True)
        return result.upserted_id is not None

    async def page(self, status: str | None, rule: str | None, member_id: str | None, limit: int,
                   before_id: str | None) -> list[dict]:
        query: dict[str, Any] = {}
        if status:
            query["status"] = status
        if rule:
            query["rule"] = rule
        if member_id:
            query["member_id"] = member_id
        if before_id:
            query["_id"] = {"$lt": before_id}
        return await self.flags.find(query).sort("_id", -1).limit(limit).to_list()

    async def of_withdrawals(self, withdrawal_ids: Sequence[str]) -> dict[str, list[dict]]:
        """Withdrawal id -> its flags, oldest first, in one read."""
        found: dict[str, list[dict]] = {}
        async for flag in self.flags.find({"withdrawal_id": {"$in": list(withdrawal_ids)}}).sort("_id", 1):
            found.setdefault(flag["withdrawal_id"], []).append(flag)
        return found

    async def linked_buyers(self, member_id: str) -> set[str]:
        """Buyers a self-referral flag not cleared links to the promoter."""
        cursor = self.flags.find({"member_id": member_id, "rule": Rule.SELF_REFERRAL.value,
                                  "status": {"$ne": FlagStatus.CLEARED.value}}, {"buyer_id": 1})
        return {flag["buyer_id"] async for flag in cursor if flag.get("buyer_id")}

    async def open_holds(self, member_id: str) -> list[str]:
        """The member's open flags whose action holds their withdrawals (those not about one commission)."""
        cursor = self.flags.find({"member_id": member_id, "status": FlagStatus.OPEN.value, "action": Action.HOLD.value,
                                  "rule": {"$in": [Rule.BIND_VELOCITY.value, Rule.REFUND_RATE.value,
                                                   Rule.WECHAT_RISK_RANK.value]}}, {"_id": 1})
        return [flag["_id"] async for flag in cursor]

    # evidence

    async def identities(self, member_ids: Sequence[str]) -> dict[str, dict]:
        """What identifies each of the members, in one read (shared with the other reads of this turn)."""
        return await self._identities.get(member_ids)

    async def _load_identities(self, member_ids: list[str]) -> dict[str, dict]:
        cursor = self.members.find({"_id": {"$in": member_ids}}, IDENTITY_FIELDS)
        return {member["_id"]: member async for member in cursor}

    async def note_login(self, member_id: str, fields: dict[str, str]) -> None:
        await self.members.update_one({"_id": member_id}, {"$set": fields})

    async def daily(self, member_ids: Sequence[str], first_day: str, last_day: str) -> dict[str, dict[str, dict]]:
        """Member -> day -> their promoter_daily counters, from `first_day` to `last_day`, in one read (shared with
        the other reads of this turn)."""
        found = await self._days.get((member_id, first_day, last_day) for member_id in member_ids)
        return {member_id: days for (member_id, _, _), days in found.items()}

    async def _load_days(self, keys: list[tuple[str, str, str]]) -> dict[tuple[str, str, str], dict[str, dict]]:
        """One read per range asked for (the orders of a batch mostly share one)."""
        ranges: dict[tuple[str, str], list[str]] = {}
        for member_id, first_day, last_day in keys:
            ranges.setdefault((first_day, last_day), []).append(member_id)
        found: dict[tuple[str, str, str], dict[str, dict]] = {}
        for (first_day, last_day), member_ids in ranges.items():
            cursor = self.promoter_days.find({"member_id": {"$in": member_ids},
                                              "day": {"$gte": first_day, "$lte": last_day}})
            async for document in cursor:
                found.setdefault((document["member_id"], first_day, last_day), {})[document["day"]] = document
        return found

    async def held_commissions(self, flag_id: str) -> list[dict]:
        return await self.db[COMMISSIONS].find({HELD_BY: flag_id}).to_list()

    async def count_bind(self, upline_id: str, origin: str, window_seconds: int) -> int:
        """Count one bind to `upline_id` from `origin`, in one round trip: how many fell within the sliding
        window, this one included."""
        key = f"{self.velocity_prefix}{upline_id}:{origin}"
        return int(await self._count_bind(keys=[key], args=[uuid.uuid4().hex, window_seconds * 1000]))
