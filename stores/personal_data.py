"""Where a member's personal data lives across the collections, for its export and its erasure (个人信息保护法).

Each collection's shape is its own store's; this module only knows, for each, how a member's documents are
found (all by an index: a member id field, or an `_id` that starts with the member id) and which of their
fields hold personal data. Money records (commissions, ledger entries, accounts, withdrawals' amounts) and
relations keep the member's internal id: the shop's accounts must still add up.

- `deletion_requests`: `{_id: member id, member_id, status: waiting | done, requested_at, blocked_by, checked_at,
  processed_at}`: one per member; a request made again is the same request.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import DESCENDING, AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from stores.agreements import ACCEPTANCES
from stores.bind_log import BIND_LOG
from stores.finance import TAX_PROFILES
from stores.grades import GRADE_CHANGES
from stores.kept_pushes import KEPT_PUSHES
from stores.ledger import ACCOUNTS, LEDGER_ENTRIES
from stores.members import BUYER_TOTALS, FOLLOW_UPS, MEMBERS
from stores.notifications import CONSENTS, NOTIFICATIONS
from stores.orders import COMMISSIONS, ORDERS
from stores.posters import DELIVERIES
from stores.statements import STATEMENTS
from stores.withdrawals import WITHDRAWALS
from stores.writes import Conflict, WriteSet, commit

DELETION_REQUESTS = "deletion_requests"
APPLICATIONS = "applications"  # stores.applications
POSTER_IMAGES = "poster_images"  # stores.posters: `_id` "<member id>|<template id>"
POSTER_CODES = "poster_codes"  # stores.posters: `_id` "<member id>|<slot>"
PRODUCT_CODES = "product_codes"  # stores.products: `_id` "<member id>|<product>|<page>"

# Fields of the member's own document that identify the person, and what is kept of the rest is the
# relation, the counters and the money's bookkeeping.
MEMBER_PERSONAL_FIELDS = ("oa_openid", "miniapp_openid", "unionid", "phone_sealed", "phone_tail", "nickname_keys",
                          "session_key_sealed", "unionid_conflict", "last_login_at", "device_hash", "login_ip_hash")
# Fields shown as they are stored nowhere: secrets and index keys (the risk controls' keyed hashes among them).
NOT_EXPORTED = ("session_key_sealed", "nickname_keys", FOLLOW_UPS, "device_hash", "login_ip_hash")
ERASED_TEXT = "已注销"
# Collections whose documents are the member's, found by a member id field: (collection, field).
BY_MEMBER_FIELD = (
    (APPLICATIONS, "member_id"), (BIND_LOG, "member_id"), (COMMISSIONS, "beneficiary_id"),
    (LEDGER_ENTRIES, "account_id"), (WITHDRAWALS, "member_id"), (ORDERS, "buyer_id"),
    (NOTIFICATIONS, "member_id"), (ACCEPTANCES, "member_id"), (GRADE_CHANGES, "member_id"),
    (STATEMENTS, "member_id"),
)
# Collections whose documents are the member's, found by an `_id` starting with the member id and a separator.
BY_ID_PREFIX = ((CONSENTS, ":"), (POSTER_IMAGES, "|"), (POSTER_CODES, "|"), (PRODUCT_CODES, "|"))


def _id_prefix(member_id: str, separator: str) -> dict:
    start = f"{member_id}{separator}"
    return {"_id": {"$gte": start, "$lt": start + "\uffff"}}


class PersonalDataStore:
    def __init__(self, client: AsyncMongoClient, db: AsyncDatabase):
        self.client = client
        self.db = db
        self.requests = db[DELETION_REQUESTS]

    # --- reading everything --------------------------------------------------------------------

    async def documents_of(self, member_id: str) -> dict[str, list[dict]]:
        """Every document that is the member's, by collection (the member's own document under `members`, its
        direct members' ids under `direct_member_ids`). Poster pictures and codes are left out: they are pictures
        of what the rest holds."""
        found: dict[str, list[dict]] = {}
        member = await self.db[MEMBERS].find_one({"_id": member_id}, {name: 0 for name in NOT_EXPORTED})
        found[MEMBERS] = [member] if member else []
        found["direct_member_ids"] = [each["_id"] async for each in
                                      self.db[MEMBERS].find({"upline_id": member_id}, {"_id": 1})]
        for collection, field in BY_MEMBER_FIELD:
            found[collection] = await self.db[collection].find({field: member_id}).to_list()
        found[CONSENTS] = await self.db[CONSENTS].find(_id_prefix(member_id, ":")).to_list()
        for collection in (ACCOUNTS, TAX_PROFILES, BUYER_TOTALS):
            found[collection] = await self.db[collection].find({"_id": member_id}).to_list()
        found[DELETION_REQUESTS] = await self.requests.find({"_id": member_id}).to_list()
        return found

    # --- deletion requests -----------------------------------------------------------------------

    async def add_request(self, member_id: str, at: datetime) -> dict:
        """The member's deletion request, made now unless made before."""
        try:
            await self.requests.insert_one({"_id": member_id, "member_id": member_id, "status": "waiting",
                                            "requested_at": at, "blocked_by": [], "checked_at": None,
                                            "processed_at": None})
        except DuplicateKeyError:
            pass
        return await self.request(member_id)

    async def request(self, member_id: str) -> dict | None:
        return await self.requests.find_one({"_id": member_id})

    async def page(self, status: str | None, limit: int, before: str | None) -> list[dict]:
        query: dict[str, Any] = {"status": status} if status else {}
        if before is not None:
            query["_id"] = {"$lt": before}
        return await self.requests.find(query).sort("_id", DESCENDING).limit(limit).to_list()

    async def note_blocked(self, member_id: str, blocked_by: list[str], at: datetime) -> None:
        await self.requests.update_one({"_id": member_id, "status": "waiting"},
                                       {"$set": {"blocked_by": blocked_by, "checked_at": at}})

    async def folded_into(self, member_id: str) -> list[str]:
        """The bare members folded into this one (`merged_into`)."""
        return [each["_id"] async for each in self.db[MEMBERS].find({"merged_into": member_id}, {"_id": 1})]

    async def open_withdrawals(self, member_id: str, closed: list[str]) -> int:
        return await self.db[WITHDRAWALS].count_documents({"member_id": member_id, "status": {"$nin": closed}})

    # --- erasing -----------------------------------------------------------------------------------

    async def erase_copies(self, member_id: str, bind_notices: str, unnamed: str, at: datetime) -> None:
        """Erase the member's personal data everywhere but its own document. Each step is idempotent: a run cut
        short is run again whole. `bind_notices` is the prefix of the upline's notice of a bind (followed by the
        bind log entry's id), whose data names the new member under `member`, replaced by `unnamed`."""
        db = self.db
        member = await db[MEMBERS].find_one({"_id": member_id}) or {}
        entry_ids = [entry["_id"] async for entry in db[BIND_LOG].find({"member_id": member_id}, {"_id": 1})]
        await db[BIND_LOG].update_many({"member_id": member_id}, {"$set": {"new_member": None}})
        # Binds still waiting for the worker carry their log entry on the member.
        await db[MEMBERS].update_one({"_id": member_id, FOLLOW_UPS: {"$exists": True}},
                                     {"$set": {f"{FOLLOW_UPS}.$[].entry.new_member": None}})
        if entry_ids:
            await db[NOTIFICATIONS].update_many({"_id": {"$in": [f"{bind_notices}{each}" for each in entry_ids]}},
                                                {"$set": {"data.member": unnamed}})
        await db[NOTIFICATIONS].update_many({"member_id": member_id}, {"$set": {"openid": None}})
        await db[APPLICATIONS].update_many({"member_id": member_id}, {"$set": {"name": ERASED_TEXT,
                                                                               "reason": ERASED_TEXT},
                                                                      "$unset": {"phone_sealed": ""}})
        await db[ORDERS].update_many({"buyer_id": member_id},
                                     {"$set": {"buyer": {"member_id": member_id}},
                                      "$unset": {"checkout.address_sealed": "", "checkout.payer_openid": ""}})
        await db[WITHDRAWALS].update_many({"member_id": member_id},
                                          {"$unset": {"bank_sealed": "", "real_name_sealed": "", "payee.openid": ""}})
        await db[TAX_PROFILES].update_many({"_id": member_id}, {"$unset": {"tax_id_sealed": "", "tax_id_masked": ""}})
        await db[DELIVERIES].delete_many({"member_id": member_id})
        for collection, separator in BY_ID_PREFIX:
            await db[collection].delete_many(_id_prefix(member_id, separator))
        openids = [member[name] for name in ("oa_openid", "miniapp_openid") if member.get(name)]
        if openids:
            # Pushes are kept here only while Redis is down, a handful at a time: read whole.
            kept = [push["_id"] async for push in db[KEPT_PUSHES].find({}, {"xml": 1})
                    if any(openid in push.get("xml", "") for openid in openids)]
            if kept:
                await db[KEPT_PUSHES].delete_many({"_id": {"$in": kept}})
        # Bare documents folded into this member kept what they were given before the fold.
        await db[MEMBERS].update_many({"merged_into": member_id}, _tombstone({}, at))

    async def erase_member(self, member_id: str, at: datetime) -> bool:
        """Replace the member's own document's personal fields by a tombstone, frozen for good, and mark its request
        done: one transaction, guarded on its balances being empty (money that arrived since the check keeps the
        request waiting: False)."""
        writes = WriteSet()
        account = await self.db[ACCOUNTS].find_one({"_id": member_id})
        if account is not None:
            writes.guard(ACCOUNTS, {"_id": member_id, "frozen_fen": 0, "available_fen": 0, "locked_fen": 0},
                         {"$set": {"updated_at": account.get("updated_at")}})
        writes.guard(MEMBERS, {"_id": member_id}, _tombstone({"frozen": True}, at))
        writes.guard(DELETION_REQUESTS, {"_id": member_id, "status": "waiting"},
                     {"$set": {"status": "done", "processed_at": at, "blocked_by": []}})
        try:
            await commit(self.client, self.db, writes)
        except Conflict:
            return False
        return True


def _tombstone(kept: dict, at: datetime | None) -> dict:
    return {"$set": {**kept, "nickname": None, "avatar_url": None, "erased_at": at},
            "$unset": {name: "" for name in MEMBER_PERSONAL_FIELDS}}
