"""Taking turns within one process: one holder at a time per key.

Concurrent transactions on one document conflict and retry at once, over and
over; callers that would all write the same documents (one inviter's next
position, one SKU's stock) wait in line instead, each paying one
transaction's time. Across processes the database's guards still decide.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager


class Turns:
    """A key's lock lives only while someone holds or awaits it."""

    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    @asynccontextmanager
    async def one_at_a_time(self, *keys: str) -> AsyncIterator[None]:
        async with AsyncExitStack() as held:
            for key in sorted(set(keys)):  # always in one order: no two holders of several keys wait on each other
                lock = self._locks.get(key)
                if lock is None:
                    lock = self._locks[key] = asyncio.Lock()
                await held.enter_async_context(lock)
            yield
