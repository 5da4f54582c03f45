"""The merchant's review queue of risk flags: list them, clear them (honest: what they held is released) or void
them (fraud: the held commissions are cancelled through the ledger, the held withdrawal rejected and its amount
returned to available). A flag is decided once: a second decision finds it no longer open."""

from __future__ import annotations

from datetime import datetime

from distribution import errors
from distribution.calendar import china_day
from distribution.ledger import commission_cancelled
from distribution.risk import FlagStatus
from distribution.withdrawals import WithdrawalStatus
from pymongo import AsyncMongoClient
from services.commissions import CommissionStatus, remaining_fen, reversal
from services.withdrawals import WithdrawalService
from stores.orders import COMMISSIONS, HELD_BY
from stores.risk import RISK_FLAGS, RiskStore, decided, release
from stores.stats import PROMOTER_DAILY, daily_update
from stores.withdrawals import WITHDRAWALS
from stores.writes import Conflict, WriteSet, commit


class FlagNotFound(errors.NotFound):
    code = "flag_not_found"


class FlagDecided(errors.Conflict):
    code = "flag_decided"


class RiskReview:
    def __init__(self, client: AsyncMongoClient, store: RiskStore, withdrawals: WithdrawalService):
        self.client = client
        self.store = store
        self.withdrawals = withdrawals

    async def page(self, status: str | None, rule: str | None, member_id: str | None, limit: int,
                   before_id: str | None) -> list[dict]:
        """Flags newest first, after the id `before_id`."""
        return await self.store.page(status, rule, member_id, limit, before_id)

    async def of_withdrawals(self, withdrawal_ids: list[str]) -> dict[str, list[dict]]:
        """The flags each of the withdrawals raised, for showing beside them."""
        return await self.store.of_withdrawals(withdrawal_ids) if withdrawal_ids else {}

    async def get(self, flag_id: str) -> dict:
        flag = await self.store.get(flag_id)
        if flag is None:
            raise FlagNotFound(f"no flag {flag_id}")
        return flag

    async def clear(self, flag_id: str, reason: str, now: datetime) -> dict:
        """Honest after all: the commissions and the withdrawal the flag held are held by it no more (a
        withdrawal then waits for the merchant's usual review)."""
        flag = await self._open(flag_id)
        writes = WriteSet()
        writes.guard(RISK_FLAGS, *decided(flag, FlagStatus.CLEARED, reason, now))
        writes.update(COMMISSIONS, release(flag_id))
        writes.update(WITHDRAWALS, release(flag_id))
        await self._commit(writes, flag_id)
        return await self.get(flag_id)

    async def void(self, flag_id: str, reason: str, now: datetime) -> dict:
        """Fraud: what is left of each commission the flag held is cancelled through the ledger, and a
        withdrawal it held is rejected, its amount returned to available."""
        flag = await self._open(flag_id)
        writes = WriteSet()
        writes.guard(RISK_FLAGS, *decided(flag, FlagStatus.VOIDED, reason, now))
        self._cancel_held(flag_id, await self.store.held_commissions(flag_id), now, writes)
        writes.update(WITHDRAWALS, release(flag_id))
        withdrawal = await self.withdrawals.store.get(flag["withdrawal_id"]) if flag.get("withdrawal_id") else None
        if withdrawal is not None and withdrawal["status"] == WithdrawalStatus.PENDING_REVIEW.value \
                and flag_id in withdrawal.get(HELD_BY, []):
            await self.withdrawals.plan_rejection(withdrawal, f"risk:{flag['rule']}: {reason}", now, writes)
        await self._commit(writes, flag_id)
        if withdrawal is not None:
            await self.withdrawals.rejected(withdrawal["_id"], now)
        return await self.get(flag_id)

    @staticmethod
    def _cancel_held(flag_id: str, commissions: list[dict], now: datetime, writes: WriteSet) -> None:
        occasion = f"risk:{flag_id}"
        for commission in commissions:
            if commission["status"] != CommissionStatus.FROZEN.value:
                continue
            share, cid, beneficiary_id = remaining_fen(commission), commission["_id"], commission["beneficiary_id"]
            writes.ledger(commission_cancelled(beneficiary_id, cid, share, occasion), now)
            update = {"$set": {"status": CommissionStatus.CANCELLED.value, "updated_at": now},
                      "$inc": {"cancelled_fen": share}, "$pull": {HELD_BY: flag_id}}
            if share:
                update["$push"] = {"reversals": reversal(CommissionStatus.FROZEN, occasion, share, now)}
            writes.guard(COMMISSIONS, {"_id": cid, "status": CommissionStatus.FROZEN.value,
                                       "cancelled_fen": commission.get("cancelled_fen", 0)}, update)
            writes.update(PROMOTER_DAILY, daily_update(beneficiary_id, china_day(now),
                                                       {"commission_reversed_fen": share}))

    async def _open(self, flag_id: str) -> dict:
        flag = await self.get(flag_id)
        if flag["status"] != FlagStatus.OPEN.value:
            raise FlagDecided(f"flag {flag_id} was {flag['status']} already")
        return flag

    async def _commit(self, writes: WriteSet, flag_id: str) -> None:
        try:
            await commit(self.client, self.store.db, writes)
        except Conflict:
            raise FlagDecided(f"flag {flag_id} or what it holds changed meanwhile: read it again") from None
