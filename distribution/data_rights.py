"""A member's rights over their personal data (个人信息保护法): what their export shows, and when their deletion
may be carried out.

Deletion erases the person, not the shop's accounts: it waits while any money is pending for the member (a
frozen, available or locked balance, or a withdrawal not yet closed), since the member could not be paid, nor
asked for, money once nobody knows who they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from distribution.withdrawals import WithdrawalStatus

# A withdrawal in any other status may still move money.
CLOSED_WITHDRAWALS = frozenset({WithdrawalStatus.PAID, WithdrawalStatus.REJECTED, WithdrawalStatus.RETURNED,
                                WithdrawalStatus.CANCELLED})
# The fields of a member's notifications that name another member (a new direct member's nickname): left out of
# the member's export, which holds nobody else's personal data.
OTHERS_IN_NOTIFICATIONS = {"new_direct_member": ("member",)}


class DeletionStatus(StrEnum):
    WAITING = "waiting"  # requested; carried out once no money is pending (by the worker, or the merchant sooner)
    DONE = "done"


class MoneyPending(StrEnum):
    FROZEN_BALANCE = "frozen_balance"
    AVAILABLE_BALANCE = "available_balance"
    LOCKED_BALANCE = "locked_balance"
    OPEN_WITHDRAWAL = "open_withdrawal"


def money_pending(frozen_fen: int, available_fen: int, locked_fen: int, open_withdrawals: int) -> list[MoneyPending]:
    """What keeps a deletion waiting; empty when it may be carried out. A negative balance (a debt after a claw
    back) is pending too."""
    pending = [reason for reason, fen in ((MoneyPending.FROZEN_BALANCE, frozen_fen),
                                          (MoneyPending.AVAILABLE_BALANCE, available_fen),
                                          (MoneyPending.LOCKED_BALANCE, locked_fen)) if fen != 0]
    if open_withdrawals:
        pending.append(MoneyPending.OPEN_WITHDRAWAL)
    return pending


def own_notification(notification: Mapping[str, Any]) -> dict[str, Any]:
    """A notification as its recipient's export shows it: without the fields that name someone else."""
    others = OTHERS_IN_NOTIFICATIONS.get(notification.get("kind"), ())
    data = {name: value for name, value in (notification.get("data") or {}).items() if name not in others}
    return {**notification, "data": data}


def exported(value: Any) -> Any:
    """A stored value as JSON: times in ISO 8601, `_id` as `id`; bytes (pictures) left out."""
    if isinstance(value, Mapping):
        return {("id" if key == "_id" else key): exported(each) for key, each in value.items()
                if not isinstance(each, (bytes, bytearray))}
    if isinstance(value, (list, tuple)):
        return [exported(each) for each in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value
