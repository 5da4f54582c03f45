"""Where posters are drawn: a pool of worker processes, so that the event loop
never waits on Pillow.

A thread pool is not enough: drawing holds the GIL for long stretches, and
bench/poster_render.py measured loop stalls of up to 32 ms with one. The
processes are forked from a forkserver that has already imported the drawing
code (forking the app's process itself would copy its threads' locks
mid-use); they start on the first poster and each keeps its own cache of
template canvases and fonts. One pool per process, shut down with the
runtime.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, TypeVar

from posters.backgrounds import PreparedBackground, prepare_background
from posters.render import PosterRequest, render_poster

log = logging.getLogger(__name__)

T = TypeVar("T")

_PRELOAD = ["posters.render", "posters.backgrounds"]


WORKER_NICENESS = 10


def _yield_to_the_server() -> None:
    """In each worker: a lower CPU priority, so that on a busy machine the event loops serving
    requests get the CPU before drawing does (a drawing may wait; an answer to WeChat may not)."""
    try:
        os.nice(WORKER_NICENESS)
    except OSError:
        pass


class PosterPool:
    def __init__(self, workers: int | None = None):
        self.workers = workers or os.cpu_count() or 1
        self._executor: ProcessPoolExecutor | None = None
        self._closed = False

    def _pool(self) -> ProcessPoolExecutor:
        if self._closed:
            raise RuntimeError("the poster pool is shut down")
        if self._executor is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(_PRELOAD)
            self._executor = ProcessPoolExecutor(self.workers, mp_context=context, initializer=_yield_to_the_server)
        return self._executor

    async def _run(self, function: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        for attempt in range(2):
            pool = self._pool()
            try:
                return await loop.run_in_executor(pool, function, *args)
            except BrokenProcessPool:
                # A worker died (killed, out of memory): every task in the pool fails with it. Start a
                # fresh pool and try once more; a poster that kills its worker twice is a real error.
                if self._executor is pool:
                    self._executor = None
                    pool.shutdown(wait=False, cancel_futures=True)
                if attempt:
                    raise
                log.warning("a poster worker process died; starting a new pool")
        raise AssertionError("unreachable")

    async def render(self, request: PosterRequest) -> bytes:
        return await self._run(render_poster, request)

    async def prepare_background(self, data: bytes, covering: tuple[int, int]) -> PreparedBackground:
        """posters.backgrounds.prepare_background in a worker: decoding a large upload takes a while."""
        return await self._run(prepare_background, data, covering)

    async def aclose(self) -> None:
        self._closed = True
        executor, self._executor = self._executor, None
        if executor is not None:
            # Joining the workers blocks: not on the loop.
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)
