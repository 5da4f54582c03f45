"""A member's data rights (个人信息保护法): the export of everything about them, and their deletion.

Deletion is asked for by the member and carried out once no money is pending
(`distribution.data_rights.money_pending`): by the worker's periodic task (`carry_out_ready`), or sooner when
the merchant processes the request; until then it waits, and the member and the merchant see what it waits
for. Carrying it out erases the person's data in every collection (`stores.personal_data`), then turns the
member's document into a tombstone (frozen, no openid, nickname, avatar or phone) and closes the
request in one transaction guarded on the balances still being empty. The member's sessions end with it (and a
session of an erased member is refused whatever Redis holds, `miniapp_api.auth`). Processing a request that is
done changes nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from distribution import errors
from distribution.data_rights import (CLOSED_WITHDRAWALS, DeletionStatus, MoneyPending, exported, money_pending,
                                      own_notification)
from services.ledger import LedgerService
from services.relations import UNNAMED_MEMBER
from services.sealing import Sealer
from services.sessions import SessionService
from stores.members import MEMBERS
from stores.notifications import NOTIFICATIONS
from stores.personal_data import PersonalDataStore

SEALED_SUFFIX = "_sealed"
WAITING_PER_READ = 100
BIND_NOTICE_PREFIX = "bind:"  # services.relations keys the upline's notice of a bind by the bind log entry


class DeletionNotRequested(errors.NotFound):
    code = "deletion_not_requested"


class DeletionWaiting(errors.Conflict):
    code = "money_pending"

    def __init__(self, pending: list[MoneyPending]):
        super().__init__(f"the deletion waits until no money is pending: {', '.join(pending)}")


class DataRightsService:
    def __init__(self, store: PersonalDataStore, ledger: LedgerService, sealer: Sealer, sessions: SessionService):
        self.store = store
        self.ledger = ledger
        self.sealer = sealer
        self.sessions = sessions

    # --- export ------------------------------------------------------------------------------------

    async def export(self, member: dict) -> dict[str, Any]:
        """Everything the shop holds about the member, sealed fields opened; others appear only as ids."""
        found = await self.store.documents_of(member["_id"])
        profile = self._opened(found.pop(MEMBERS)[0])
        relations = {"upline_id": profile.pop("upline_id", None), "ancestor_ids": profile.pop("ancestor_ids", []),
                     "direct_member_ids": found.pop("direct_member_ids")}
        found[NOTIFICATIONS] = [own_notification(each) for each in found[NOTIFICATIONS]]
        return exported({"profile": profile, "relations": relations,
                         "balances": await self.ledger.balances(member["_id"]),
                         **{collection: [self._opened(each) for each in documents]
                            for collection, documents in found.items()}})

    def _opened(self, document: dict) -> dict:
        """The document with each sealed field opened, under its name without `_sealed`: it is the member's own."""
        return {(key.removesuffix(SEALED_SUFFIX) if _sealed(key, value) else key):
                (self.sealer.open(value) if _sealed(key, value) else value) for key, value in document.items()}

    # --- deletion ----------------------------------------------------------------------------------

    async def request_deletion(self, member: dict, at: datetime) -> dict:
        request = await self.store.add_request(member["_id"], at)
        return await self._with_pending(request, at)

    async def deletion(self, member_id: str, at: datetime) -> dict:
        """The member's deletion request, with what it waits for now."""
        request = await self.store.request(member_id)
        if request is None:
            raise DeletionNotRequested(f"no deletion was requested for member {member_id}")
        return await self._with_pending(request, at)

    async def page(self, status: DeletionStatus | None, limit: int, before: str | None) -> list[dict]:
        return await self.store.page(status.value if status else None, limit, before)

    async def process(self, member_id: str, at: datetime) -> dict:
        """Carry the member's deletion out: the request done and its sessions ended; DeletionWaiting (recorded on the request) while
        money is pending."""
        request = await self.deletion(member_id, at)
        if request["status"] == DeletionStatus.DONE:
            return request
        if request["blocked_by"]:
            raise DeletionWaiting(request["blocked_by"])
        await self.store.erase_copies(member_id, BIND_NOTICE_PREFIX, UNNAMED_MEMBER, at)
        if not await self.store.erase_member(member_id, at):
            again = await self.deletion(member_id, at)  # money arrived since the check, or another run finished
            if again["status"] != DeletionStatus.DONE:
                raise DeletionWaiting(again["blocked_by"])
        for each in (member_id, *await self.store.folded_into(member_id)):  # tokens of a folded one lead here
            await self.sessions.end_all(each)
        return await self.deletion(member_id, at)

    async def carry_out_ready(self, at: datetime) -> int:
        """Carry out every waiting request whose member has no money pending any more: a deletion needs nobody
        once the money is settled. How many this run carried out. Runs racing on one request take the same
        idempotent steps, and its guarded last write marks it done once."""
        carried_out, before = 0, None
        while waiting := await self.store.page(DeletionStatus.WAITING.value, WAITING_PER_READ, before):
            before = waiting[-1]["_id"]
            for request in waiting:
                try:
                    await self.process(request["member_id"], at)
                except DeletionWaiting:
                    continue
                carried_out += 1
        return carried_out

    async def _with_pending(self, request: dict, at: datetime) -> dict:
        if request["status"] == DeletionStatus.DONE:
            return request
        member_id = request["member_id"]
        balances = await self.ledger.balances(member_id)
        pending = money_pending(balances["frozen_fen"], balances["available_fen"], balances["locked_fen"],
                                await self.store.open_withdrawals(member_id, sorted(CLOSED_WITHDRAWALS)))
        blocked_by = [reason.value for reason in pending]
        if blocked_by != request["blocked_by"]:
            await self.store.note_blocked(member_id, blocked_by, at)
        return {**request, "blocked_by": blocked_by, "checked_at": at}


def _sealed(key: str, value: Any) -> bool:
    return key.endswith(SEALED_SUFFIX) and isinstance(value, str)

