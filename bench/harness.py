"""What benchmarks share: a hard time limit, SIGTERM that still cleans up, and event-loop stalls."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from typing import Awaitable, Callable

TICK_SECONDS = 0.001


def run_bounded(work: Awaitable[int], seconds: float) -> int:
    """Run `work` (its exit status), stopping it after `seconds` or on SIGTERM; its own cleanup runs either way."""
    try:
        return asyncio.run(_stoppable(asyncio.wait_for(work, seconds)))
    except TimeoutError:
        print(f"stopped after {seconds:g} s", file=sys.stderr)
        return 2
    except asyncio.CancelledError:
        print("stopped by SIGTERM (cleaned up)", file=sys.stderr)
        return 143


async def _stoppable(work: Awaitable[int]) -> int:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    return await work


async def worst_stall(start_work: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    """The worst lateness of a 1 ms sleep, in ms, while the work `start_work` starts runs, and the seconds
    the work took. The work starts only once the ticking does."""
    finished = asyncio.Event()
    worst = 0.0

    async def tick() -> None:
        nonlocal worst
        while not finished.is_set():
            started = time.perf_counter()
            await asyncio.sleep(TICK_SECONDS)
            worst = max(worst, time.perf_counter() - started - TICK_SECONDS)

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0.05)
    started = time.perf_counter()
    await start_work()
    wall = time.perf_counter() - started
    finished.set()
    await ticker
    return worst * 1000, wall
