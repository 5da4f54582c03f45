"""The merchant's rules (binding, commission, withdrawals, ...), stored in MongoDB.

Each kind is a `Record` from the domain, so a PUT is validated exactly as
code-built values are. Reads are cached per process for `cache_seconds`: a
change reaches every server and worker process within that time.
"""

from __future__ import annotations

import asyncio
import functools
import time
from datetime import datetime, timezone
from typing import TypeVar

from pymongo.asynchronous.database import AsyncDatabase

from distribution.binding import BindingSettings
from distribution.chain_move import ChainMoveSettings
from distribution.chat import ChatSettings
from distribution.checkout import CheckoutSettings
from distribution.commission_rules import CommissionRules
from distribution.content import ContentSettings, published_texts
from distribution.errors import NotFound
from distribution.grades import GradeSettings
from distribution.oa_menu import OaMenu
from distribution.poster_settings import PosterSettings
from distribution.rate_limits import RateLimits
from distribution.records import Record
from distribution.risk import RiskSettings
from distribution.settlement import SettlementSettings
from distribution.tax import TaxSettings
from distribution.withdrawals import WithdrawalRules
from stores.settings import SettingsStore

R = TypeVar("R", bound=Record)

# Merchant API name -> the record that holds it. A new kind of settings is a line here.
SETTINGS_KINDS: dict[str, type[Record]] = {
    "binding": BindingSettings,
    "commission": CommissionRules,
    "withdrawals": WithdrawalRules,
    "grades": GradeSettings,
    "posters": PosterSettings,
    "chat": ChatSettings,
    "oa_menu": OaMenu,
    "chain_move": ChainMoveSettings,
    "checkout": CheckoutSettings,
    "content": ContentSettings,
    "settlement": SettlementSettings,
    "limits": RateLimits,
    "tax": TaxSettings,
    "risk": RiskSettings,
}


class UnknownSettings(NotFound):
    code = "unknown_settings"


def settings_kind(name: str) -> type[Record]:
    try:
        return SETTINGS_KINDS[name]
    except KeyError:
        raise UnknownSettings(f"no settings named {name!r}; known: {', '.join(sorted(SETTINGS_KINDS))}") from None


_NAMES = {kind: name for name, kind in SETTINGS_KINDS.items()}


def _name_of(kind: type[Record]) -> str:
    return _NAMES[kind]


def _stored_or_default(kind: type[R], stored: dict | None) -> R:
    return kind.from_dict(stored) if stored is not None else kind()


class MerchantSettings:
    def __init__(self, db: AsyncDatabase, cache_seconds: float = 5.0):
        self.store = SettingsStore(db)
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, Record]] = {}
        self._reading: dict[str, asyncio.Future[Record]] = {}

    async def get(self, kind: type[R]) -> R:
        name = _name_of(kind)
        cached = self._cache.get(name)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]  # type: ignore[return-value]
        # One read for all who miss at once: a worker plans a batch's orders side by side, and each would read
        # the same settings when the cache has just expired.
        reading = self._reading.get(name)
        if reading is None:
            reading = self._reading[name] = asyncio.ensure_future(self.stored(kind))
            reading.add_done_callback(functools.partial(self._read, name))
        return await asyncio.shield(reading)  # type: ignore[return-value]

    def _read(self, name: str, reading: asyncio.Future[Record]) -> None:
        if self._reading.get(name) is not reading:
            return  # forgotten while it was read: what it read may be older than the change
        del self._reading[name]
        if not reading.cancelled() and reading.exception() is None:
            self._cache[name] = (time.monotonic() + self.cache_seconds, reading.result())

    async def put(self, value: Record) -> None:
        name = _name_of(type(value))
        await self.store.put(name, value.to_dict(), datetime.now(timezone.utc))
        self.forget(type(value))

    def forget(self, kind: type[Record]) -> None:
        """Read `kind` from the store next time: a transaction elsewhere has just changed it."""
        self._cache.pop(_name_of(kind), None)
        self._reading.pop(_name_of(kind), None)

    async def stored(self, kind: type[R]) -> R:
        """The settings as stored now, past this process's cache: another process may have changed them within
        its cache time, and what is acted on or audited must be what is really there."""
        return _stored_or_default(kind, await self.store.value(_name_of(kind)))

    async def replace(self, value: R) -> R:
        """Store `value`; the settings it replaced, read from the store. SensitiveWordFound when a text it publishes
        carries one of the content rules' words."""
        (await self.get(ContentSettings)).refuse_words(published_texts(value))
        before = await self.stored(type(value))
        await self.put(value)
        return before
