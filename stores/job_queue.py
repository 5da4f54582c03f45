"""The work queue: a Redis stream read by a consumer group of workers.

- A job is acknowledged only after its handler returns, so a worker killed
  mid-job leaves it pending; another worker claims it (XAUTOCLAIM) once it has
  been idle `claim_idle_ms`, and does it again. Handlers are therefore
  idempotent: the same job done twice has the effect of doing it once.
- A handler that raises has its job re-queued after an exponential backoff
  (a sorted set of due times); after `max_attempts` it goes to a dead-letter
  stream, where an operator can see it.
- `RetryLater` lets a handler ask for a retry without counting as a failure
  (e.g. WeChat's rate limit).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Mapping

from redis.asyncio import Redis
from redis.exceptions import ResponseError

log = logging.getLogger(__name__)

JobHandler = Callable[[dict[str, Any]], Awaitable[None]]

# Moves due retries back onto the stream, atomically so two workers never both move one.
_RELEASE_DUE = """
local due = redis.call("zrangebyscore", KEYS[1], "-inf", ARGV[1], "LIMIT", 0, tonumber(ARGV[2]))
for _, job in ipairs(due) do
    if redis.call("zrem", KEYS[1], job) == 1 then
        redis.call("xadd", KEYS[2], "*", "job", job)
    end
end
return #due
"""


class RetryLater(Exception):
    def __init__(self, seconds: float, reason: str = ""):
        super().__init__(reason or f"retry in {seconds}s")
        self.seconds = seconds


@dataclass(frozen=True)
class Job:
    kind: str
    payload: dict[str, Any]
    attempt: int = 1

    def encode(self) -> str:
        return json.dumps({"kind": self.kind, "payload": self.payload, "attempt": self.attempt}, ensure_ascii=False)

    @classmethod
    def decode(cls, raw: bytes | str) -> "Job":
        data = json.loads(raw)
        return cls(data["kind"], data["payload"], data.get("attempt", 1))


class JobQueue:
    group = "workers"

    def __init__(self, redis: Redis, key_prefix: str, *, claim_idle_ms: int = 30_000, max_attempts: int = 8,
                 base_backoff_seconds: float = 2.0):
        self.redis = redis
        self.stream = f"{key_prefix}jobs"
        self.retries = f"{key_prefix}jobs:retry"
        self.dead = f"{key_prefix}jobs:dead"
        self.claim_idle_ms = claim_idle_ms
        self.max_attempts = max_attempts
        self.base_backoff_seconds = base_backoff_seconds
        self._release_due = redis.register_script(_RELEASE_DUE)
        self._group_ready = False

    async def enqueue(self, kind: str, payload: dict[str, Any]) -> None:
        await self.redis.xadd(self.stream, {"job": Job(kind, payload).encode()})

    async def ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            await self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
        self._group_ready = True

    async def work(self, consumer: str, handlers: Mapping[str, JobHandler], *, count: int = 32,
                   block_ms: int | None = 1000) -> int:
        """Do one batch: due retries released, stuck jobs claimed, new jobs read. Returns jobs handled."""
        await self.ensure_group()
        await self._release_due(keys=[self.retries, self.stream], args=[time.time(), count])
        _, claimed, _ = await self.redis.xautoclaim(
            self.stream, self.group, consumer, min_idle_time=self.claim_idle_ms, start_id="0-0", count=count
        )
        entries = list(claimed)
        if not entries:
            read = await self.redis.xreadgroup(self.group, consumer, {self.stream: ">"}, count=count, block=block_ms)
            entries = [entry for _, stream_entries in read for entry in stream_entries]
        for entry_id, fields in entries:
            if fields:  # a claimed entry deleted meanwhile comes back empty
                await self._handle(Job.decode(fields[b"job"]), handlers)
            # Done entries leave the stream, so it holds only work not yet finished.
            async with self.redis.pipeline(transaction=True) as done:
                await done.xack(self.stream, self.group, entry_id).xdel(self.stream, entry_id).execute()
        return len(entries)

    async def run(self, consumer: str, handlers: Mapping[str, JobHandler], stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.work(consumer, handlers)
            except (ConnectionError, OSError) as error:
                log.warning("queue unavailable, retrying: %s", error)
                await asyncio.sleep(1)

    async def drain(self, consumer: str, handlers: Mapping[str, JobHandler]) -> int:
        """Work until nothing is ready now (retries not yet due stay put). For tests and benchmarks."""
        done = 0
        while handled := await self.work(consumer, handlers, block_ms=None):
            done += handled
        return done

    async def _handle(self, job: Job, handlers: Mapping[str, JobHandler]) -> None:
        handler = handlers.get(job.kind)
        if handler is None:
            await self._bury(job, f"no handler for job kind {job.kind!r}")
            return
        try:
            await handler(job.payload)
        except RetryLater as later:
            await self._retry(job, later.seconds, count_attempt=False)
        except Exception as error:  # noqa: BLE001 - any failure is retried, then dead-lettered
            if job.attempt >= self.max_attempts:
                await self._bury(job, f"{type(error).__name__}: {error}")
            else:
                log.warning("job %s failed (attempt %d): %s", job.kind, job.attempt, error)
                await self._retry(job, self.base_backoff_seconds * 2 ** (job.attempt - 1), count_attempt=True)

    async def _retry(self, job: Job, delay_seconds: float, count_attempt: bool) -> None:
        again = Job(job.kind, job.payload, job.attempt + 1 if count_attempt else job.attempt)
        await self.redis.zadd(self.retries, {again.encode(): time.time() + delay_seconds})

    async def _bury(self, job: Job, reason: str) -> None:
        log.error("job %s dead-lettered: %s", job.kind, reason)
        await self.redis.xadd(self.dead, {"job": job.encode(), "reason": reason})

    async def stats(self) -> dict[str, int]:
        await self.ensure_group()
        pending = await self.redis.xpending(self.stream, self.group)
        return {
            "length": await self.redis.xlen(self.stream),
            "pending": pending["pending"],
            "retrying": await self.redis.zcard(self.retries),
            "dead": await self.redis.xlen(self.dead),
        }
