"""What every benchmark shares: a hard time limit, and SIGTERM that still cleans up."""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Awaitable


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
