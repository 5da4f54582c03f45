"""Reads by key made in one turn of the event loop, answered by one query.

The worker plans a batch of orders side by side, and each plan may read a few
documents by key (the members a risk rule compares, their daily counters).
Asked one by one, that is a query per order; gathered, it is one per batch.
Each caller gets back what was found of its own keys, as if it had asked alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# Queries on their way: held so that the loop does not lose them.
_LOADS: set[asyncio.Task] = set()


class Coalesced(Generic[K, V]):
    def __init__(self, load: Callable[[list[K]], Awaitable[dict[K, V]]]):
        """`load(keys)`: what is found of `keys`, by key (a key that found nothing is left out)."""
        self._load = load
        self._waiting: list[tuple[list[K], asyncio.Future[dict[K, V]]]] = []

    async def get(self, keys: Iterable[K]) -> dict[K, V]:
        wanted = list(keys)
        if not wanted:
            return {}
        loop = asyncio.get_running_loop()
        if not self._waiting:
            loop.call_soon(self._send_waiting)
        answer: asyncio.Future[dict[K, V]] = loop.create_future()
        self._waiting.append((wanted, answer))
        found = await answer
        return {key: found[key] for key in wanted if key in found}

    def _send_waiting(self) -> None:
        batch, self._waiting = self._waiting, []
        task = asyncio.create_task(self._load_batch(batch))
        task.add_done_callback(_LOADS.discard)
        _LOADS.add(task)

    async def _load_batch(self, batch: list[tuple[list[K], asyncio.Future[dict[K, V]]]]) -> None:
        try:
            found = await self._load(list(dict.fromkeys(key for wanted, _ in batch for key in wanted)))
        except asyncio.CancelledError:
            for _, answer in batch:
                answer.cancel()
            raise
        except Exception as error:  # noqa: BLE001 - each caller meets it, as if it had asked alone
            for _, answer in batch:
                if not answer.done():
                    answer.set_exception(error)
            return
        for _, answer in batch:
            if not answer.done():  # its caller was cancelled meanwhile
                answer.set_result(found)
