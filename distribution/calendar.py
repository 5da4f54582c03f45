"""China's clock: the shop's days, caps and stats follow its calendar, whatever zone a server runs in.

Times are stored as aware UTC; they become China's time (UTC+8, no daylight
saving) only to name a day or to show a time to a person.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")


def china_day(at: datetime) -> str:
    """The China calendar day of `at`, as `YYYY-MM-DD` (how daily documents are keyed)."""
    return at.astimezone(CHINA).date().isoformat()


def china_time(at: datetime) -> str:
    """`at` as a person in China reads it in a message, to the minute."""
    return at.astimezone(CHINA).strftime("%Y-%m-%d %H:%M")
