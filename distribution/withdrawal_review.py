"""What a reviewer weighs beside a withdrawal request: the promoter's history, and the signals that ask for a
closer look before approving. None of them refuses anything; the merchant decides."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

# An account this young asking for money is the classic shape of a fake promoter.
NEW_ACCOUNT = timedelta(days=7)
# This many requests in one day (this one included) is more than a promoter usually needs.
MANY_IN_A_DAY = 3
# An amount this many times the promoter's usual paid withdrawal.
ABOVE_USUAL_FACTOR = 3


class RiskSignal(StrEnum):
    FIRST_WITHDRAWAL = "first_withdrawal"  # nothing paid out to them before
    NEW_ACCOUNT = "new_account"
    ABOVE_USUAL = "above_usual"
    MANY_TODAY = "many_today"
    FROZEN = "frozen"  # the merchant froze the promoter
    IN_DEBT = "in_debt"  # clawbacks took more than they had: available is negative


@dataclass(frozen=True)
class PromoterHistory:
    """A promoter's money so far, as it stands while a request of theirs waits."""

    nickname: str | None
    paid_count: int  # withdrawals paid out
    paid_fen: int
    earned_fen: int  # commissions net of refunds: what their balances hold plus what was paid out
    available_fen: int
    requested_today: int  # today's requests not rejected, returned or cancelled (a pending one included)
    joined_at: datetime | None
    frozen: bool
    direct_count: int

    @property
    def usual_fen(self) -> int | None:
        """Their average paid withdrawal; None before the first."""
        return self.paid_fen // self.paid_count if self.paid_count else None


def risk_signals(amount_fen: int, history: PromoterHistory, now: datetime) -> list[RiskSignal]:
    signals = []
    if history.paid_count == 0:
        signals.append(RiskSignal.FIRST_WITHDRAWAL)
    elif amount_fen >= ABOVE_USUAL_FACTOR * history.usual_fen:
        signals.append(RiskSignal.ABOVE_USUAL)
    if history.joined_at is not None and now - history.joined_at < NEW_ACCOUNT:
        signals.append(RiskSignal.NEW_ACCOUNT)
    if history.requested_today >= MANY_IN_A_DAY:
        signals.append(RiskSignal.MANY_TODAY)
    if history.frozen:
        signals.append(RiskSignal.FROZEN)
    if history.available_fen < 0:
        signals.append(RiskSignal.IN_DEBT)
    return signals
