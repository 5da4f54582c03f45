"""The ledger's vocabulary (账本): buckets, entry kinds, and the entries of each money movement.

Every change of money is an append-only `Entry`. An account (a promoter's
member id) has three buckets:

- frozen: commissions earned, not yet settled;
- available: withdrawable;
- locked: asked for in a withdrawal, not yet paid out or returned.

Idempotency keys are `<kind>:<ref>[:<refund id>]:<bucket>`: derived only from
the movement, so replaying an event yields the very same keys and a unique
index on them turns the replay into a no-op. Zero-fen movements yield no
entries.

Debt: a clawback after settlement takes its amount out of `available` even
when that makes it negative, and nothing more is needed. Later settlements
credit the same bucket, so they pay the debt off before anything becomes
withdrawable, and a withdrawal must fit in `available`, so a promoter in debt
cannot withdraw. `frozen` and `locked` never go negative.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum


class Bucket(StrEnum):
    FROZEN = "frozen"
    AVAILABLE = "available"
    LOCKED = "locked"


class EntryKind(StrEnum):
    COMMISSION_FROZEN = "commission_frozen"
    COMMISSION_SETTLED = "commission_settled"
    COMMISSION_CANCELLED = "commission_cancelled"  # refund before settlement
    COMMISSION_CLAWBACK = "commission_clawback"  # refund after settlement
    WITHDRAWAL_LOCKED = "withdrawal_locked"
    WITHDRAWAL_PAID = "withdrawal_paid"
    WITHDRAWAL_FEE = "withdrawal_fee"
    WITHDRAWAL_UNLOCKED = "withdrawal_unlocked"  # rejected, or given up after a failed payment


@dataclass(frozen=True)
class Entry:
    account_id: str
    bucket: Bucket
    amount_fen: int  # signed: what the bucket gains
    kind: EntryKind
    ref: str  # the commission or withdrawal id
    idempotency_key: str
    statement_id: str | None = None  # a settlement made by a statement (distribution.settlement): which one


def commission_frozen(account_id: str, commission_id: str, amount_fen: int) -> list[Entry]:
    return _movement(account_id, EntryKind.COMMISSION_FROZEN, commission_id, amount_fen, [(Bucket.FROZEN, +1)])


def commission_settled(account_id: str, commission_id: str, amount_fen: int,
                       statement_id: str | None = None) -> list[Entry]:
    """Settle what is left of a commission after any cancellations; by a statement, the entries name it (their
    key stays the commission's: a commission settles once, however)."""
    moves = [(Bucket.FROZEN, -1), (Bucket.AVAILABLE, +1)]
    entries = _movement(account_id, EntryKind.COMMISSION_SETTLED, commission_id, amount_fen, moves)
    return [replace(entry, statement_id=statement_id) for entry in entries]


def commission_cancelled(account_id: str, commission_id: str, amount_fen: int, refund_id: str) -> list[Entry]:
    """A refund's share of a commission still frozen; one commission may be cancelled by several refunds."""
    kind = EntryKind.COMMISSION_CANCELLED
    return _movement(account_id, kind, commission_id, amount_fen, [(Bucket.FROZEN, -1)], refund_id)


def commission_clawback(account_id: str, commission_id: str, amount_fen: int, refund_id: str) -> list[Entry]:
    """A refund's share of a settled commission; `available` may go negative (see the module's docstring)."""
    kind = EntryKind.COMMISSION_CLAWBACK
    return _movement(account_id, kind, commission_id, amount_fen, [(Bucket.AVAILABLE, -1)], refund_id)


def withdrawal_locked(account_id: str, withdrawal_id: str, amount_fen: int) -> list[Entry]:
    moves = [(Bucket.AVAILABLE, -1), (Bucket.LOCKED, +1)]
    return _movement(account_id, EntryKind.WITHDRAWAL_LOCKED, withdrawal_id, amount_fen, moves)


def withdrawal_paid(account_id: str, withdrawal_id: str, amount_fen: int, fee_fen: int) -> list[Entry]:
    """The locked amount leaves the account: the net paid out, and the fee kept apart so it can be reported."""
    if not 0 <= fee_fen <= amount_fen:
        raise ValueError(f"fee {fee_fen} does not fit withdrawal amount {amount_fen}")
    net_fen = amount_fen - fee_fen
    return [
        *_movement(account_id, EntryKind.WITHDRAWAL_PAID, withdrawal_id, net_fen, [(Bucket.LOCKED, -1)]),
        *_movement(account_id, EntryKind.WITHDRAWAL_FEE, withdrawal_id, fee_fen, [(Bucket.LOCKED, -1)]),
    ]


def withdrawal_unlocked(account_id: str, withdrawal_id: str, amount_fen: int) -> list[Entry]:
    moves = [(Bucket.LOCKED, -1), (Bucket.AVAILABLE, +1)]
    return _movement(account_id, EntryKind.WITHDRAWAL_UNLOCKED, withdrawal_id, amount_fen, moves)


def balances_from_entries(entries: Iterable[Entry]) -> dict[str, dict[Bucket, int]]:
    """Every account's buckets (all three, zeros included) as the ledger says they are."""
    balances: defaultdict[str, dict[Bucket, int]] = defaultdict(lambda: dict.fromkeys(Bucket, 0))
    for entry in entries:
        balances[entry.account_id][entry.bucket] += entry.amount_fen
    return dict(balances)


def _movement(
    account_id: str,
    kind: EntryKind,
    ref: str,
    amount_fen: int,
    signed_buckets: list[tuple[Bucket, int]],
    occasion: str | None = None,
) -> list[Entry]:
    if amount_fen < 0:
        raise ValueError(f"{kind.value} of {ref}: amount must not be negative, got {amount_fen}")
    if amount_fen == 0:
        return []
    key_prefix = ":".join(part for part in (kind.value, ref, occasion) if part is not None)
    return [
        Entry(account_id, bucket, sign * amount_fen, kind, ref, f"{key_prefix}:{bucket.value}")
        for bucket, sign in signed_buckets
    ]
