"""The work queue: a Redis stream read by a consumer group of workers (Redis 6.2 or later).

- A job is acknowledged only after its handler returns, so a worker killed
  mid-job leaves it pending; another worker claims it (XAUTOCLAIM) once it has
  been idle `claim_idle_ms`, and does it again. Handlers are therefore
  idempotent: the same job done twice has the effect of doing it once.
- The jobs of one read (up to `count`) are acknowledged together, in one
  Redis transaction, once their handlers have returned; the jobs of a kind
  registered as `Batched` are handled in one call (e.g. many orders' events
  in one MongoDB transaction). A worker killed mid-batch leaves them all
  pending, to be done again.
- A handler that raises has its job re-queued after an exponential backoff
  (a sorted set of due times); after `max_attempts` it goes to a dead-letter
  stream, where an operator can see it.
- `RetryLater` lets a handler ask for a retry without counting as a failure
  (e.g. WeChat's rate limit).
- An outage of Redis or MongoDB is nobody's fault: `run` pauses (a bounded,
  jittered backoff) and goes on when the store is back, and a job cut short
  by one (as the caller's `is_outage` tells) is done again without spending
  an attempt. A Redis restarted without
  its data has lost the consumer group with the jobs; the group is made
  again, and the jobs are queued again from MongoDB by the worker's sweeps.
- Liveness: a worker writes a heartbeat every HEARTBEAT_SECONDS while it
  gets through jobs or waits for them, and the time of each periodic task's
  last success, in Redis's clock; any process reads them with the queue's
  counts (`status`), for `/healthz` and `/metrics`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Awaitable, Callable, Mapping, TypeVar

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from stores.locks import taken_for_its_time

log = logging.getLogger(__name__)

JobHandler = Callable[[dict[str, Any]], Awaitable[None]]
BatchHandler = Callable[[list[dict[str, Any]]], Awaitable[None]]
OutageTest = Callable[[BaseException], bool]  # whether an error says a store could not be reached
T = TypeVar("T")

BACKOFF_FIRST_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 10.0
OUTAGE_RETRY_SECONDS = 1.0  # a job cut short by an outage, once the worker goes on
HEARTBEAT_SECONDS = 5.0
# Between storing work and queueing its job, and between Redis's clock and ours.
SWEEP_MARGIN_SECONDS = 10.0
FORGET_WORKERS_SECONDS = 86400.0  # heartbeats of workers gone this long are removed

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


def backoff_seconds(failures: int) -> float:
    """The pause after `failures` failures in a row: doubling up to BACKOFF_MAX_SECONDS, drawn from the
    upper half so that workers which lost a store together do not all come back at the same instant."""
    ceiling = min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2 ** (failures - 1))
    return random.uniform(ceiling / 2, ceiling)


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


@dataclass(frozen=True)
class Batched:
    """A kind whose jobs of one read are handled in one call (the payloads in the order read), e.g. many orders'
    events applied in one transaction. Idempotent like any handler; it succeeds or fails for all of them."""

    handle: BatchHandler


Handlers = Mapping[str, JobHandler | Batched]


@dataclass
class _Step:
    """Jobs handled by one call: a job of its own, or all of a read's jobs of a batched kind."""

    handler: JobHandler | Batched
    entry_ids: list[bytes] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)

    async def run(self) -> None:
        if isinstance(self.handler, Batched):
            await self.handler.handle([job.payload for job in self.jobs])
        else:
            await self.handler(self.jobs[0].payload)


@dataclass(frozen=True)
class Outcome:
    """What becomes of a job taken from the stream, written with its acknowledgement in one transaction."""

    retry: Job | None = None
    retry_in_seconds: float = 0.0
    dead: dict[str, str] | None = None  # the dead letter's fields
    outage: Exception | None = None  # the handler met one: the worker pauses once the job is put back


@dataclass(frozen=True)
class QueueStatus:
    """The queue and its workers as Redis holds them, times in Redis's clock (unix seconds)."""

    now: float
    length: int  # jobs in the stream: waiting or being done
    pending: int  # being done (delivered, not acknowledged)
    retrying: int  # waiting for a retry
    dead: int  # dead letters
    oldest_job_at: float | None  # when the oldest job in the stream was queued
    last_heartbeat: float | None  # the newest heartbeat of any worker
    task_runs: dict[str, float] = field(default_factory=dict)  # periodic task -> its last success

    def counts(self) -> dict[str, int]:
        return {"length": self.length, "pending": self.pending, "retrying": self.retrying, "dead": self.dead}


class JobQueue:
    group = "workers"

    def __init__(self, redis: Redis, key_prefix: str, *, claim_idle_ms: int = 30_000, max_attempts: int = 8,
                 base_backoff_seconds: float = 2.0):
        self.redis = redis
        self.stream = f"{key_prefix}jobs"
        self.retries = f"{key_prefix}jobs:retry"
        self.dead = f"{key_prefix}jobs:dead"
        self.heartbeats = f"{key_prefix}workers:heartbeat"
        self.task_runs = f"{key_prefix}workers:task_runs"
        self.task_turns = f"{key_prefix}workers:task_turn:"
        self.claim_idle_ms = claim_idle_ms
        self.max_attempts = max_attempts
        self.base_backoff_seconds = base_backoff_seconds
        self._release_due = redis.register_script(_RELEASE_DUE)
        self._group_ready = False
        self._cut_short = False  # this worker's last batch was interrupted: its own pending jobs come first
        self._last_beat = float("-inf")  # when this process last wrote its heartbeat (monotonic)

    async def enqueue(self, kind: str, payload: dict[str, Any]) -> None:
        await self.redis.xadd(self.stream, {"job": Job(kind, payload).encode()})

    async def ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            # From the stream's start: it holds only unfinished work, all of which the new group must do.
            await self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
        self._group_ready = True

    async def _in_group(self, command: Callable[[], Awaitable[T]]) -> T:
        """`command()`, which needs the consumer group; made again when Redis lost it (restarted without data)."""
        await self.ensure_group()
        try:
            return await command()
        except ResponseError as error:
            if "NOGROUP" not in str(error):
                raise
        log.warning("the queue's consumer group was gone (Redis lost its data?): making it again")
        self._group_ready = False
        await self.ensure_group()
        return await command()

    async def work(self, consumer: str, handlers: Handlers, *, count: int = 32,
                   block_ms: int | None = 1000, is_outage: OutageTest = lambda error: False) -> int:
        """Do one batch: due retries released, stuck jobs claimed, new jobs read. Returns jobs handled.
        A handler's error that `is_outage` is raised, once the job is put back without spending an attempt."""
        return await self._in_group(lambda: self._work(consumer, handlers, count, block_ms, is_outage))

    async def _work(self, consumer: str, handlers: Handlers, count: int, block_ms: int | None,
                    is_outage: OutageTest) -> int:
        await self._release_due(keys=[self.retries, self.stream], args=[time.time(), count])
        # Redis 7 answers (next start, claimed, deleted ids), 6.2 (next start, claimed).
        entries = list((await self.redis.xautoclaim(
            self.stream, self.group, consumer, min_idle_time=self.claim_idle_ms, start_id="0-0", count=count))[1])
        own_pending = not entries and self._cut_short
        if own_pending:  # taken again now, not claimed after claim_idle_ms
            entries = await self._read(consumer, "0", count, None)
        if not entries:
            entries = await self._read(consumer, ">", count, block_ms)
        self._cut_short = True
        settled, steps = self._steps(entries, handlers)
        for step in steps:
            outcomes = await self._outcomes(step, is_outage)
            settled += zip(step.entry_ids, outcomes)
            if outcomes[0].outage is not None:
                await self._settle(settled)  # the steps not run yet stay pending: this worker's own, next time
                raise outcomes[0].outage
            await self._beat_if_due(consumer)  # a long batch is work too
        await self._settle(settled)
        self._cut_short = own_pending and len(entries) == count  # more of its own may wait behind them
        await self._beat_if_due(consumer)
        return len(entries)

    def _steps(self, entries: list[tuple[bytes, dict]],
               handlers: Handlers) -> tuple[list[tuple[bytes, Outcome]], list[_Step]]:
        """What a read's entries come to: those settled at once (deleted, unreadable, of no known kind), and the
        steps to run, the jobs of a batched kind together in the place of the first."""
        settled: list[tuple[bytes, Outcome]] = []
        steps: list[_Step] = []
        batches: dict[str, _Step] = {}
        for entry_id, fields in entries:
            if not fields:  # deleted meanwhile
                settled.append((entry_id, Outcome()))
                continue
            job = self._job(fields, handlers)
            if isinstance(job, Outcome):
                settled.append((entry_id, job))
                continue
            handler = handlers[job.kind]
            step = batches.get(job.kind) if isinstance(handler, Batched) else None
            if step is None:
                step = _Step(handler)
                steps.append(step)
                if isinstance(handler, Batched):
                    batches[job.kind] = step
            step.entry_ids.append(entry_id)
            step.jobs.append(job)
        return settled, steps

    async def _read(self, consumer: str, after: str, count: int, block_ms: int | None) -> list[tuple[bytes, dict]]:
        read = await self.redis.xreadgroup(self.group, consumer, {self.stream: after}, count=count, block=block_ms)
        return [entry for _, stream_entries in read for entry in stream_entries]

    async def run(self, consumer: str, handlers: Handlers, stop: asyncio.Event,
                  is_outage: OutageTest) -> None:
        """Work until `stop`, whatever happens to the stores meanwhile."""
        failures = 0
        while not stop.is_set():
            try:
                await self.work(consumer, handlers, is_outage=is_outage)
            except Exception as error:  # noqa: BLE001 - whatever goes wrong, the worker pauses and goes on
                failures += 1
                self._last_beat = float("-inf")  # beats again at once when back: Redis may have lost the last one
                pause = backoff_seconds(failures)
                if is_outage(error):
                    log.warning("queue paused %.1fs, a store is unavailable: %s: %.200s", pause, type(error).__name__,
                                error)
                else:
                    log.exception("queue paused %.1fs after an unexpected error", pause)
                try:
                    await asyncio.wait_for(stop.wait(), pause)
                except asyncio.TimeoutError:
                    pass
            else:
                failures = 0

    async def drain(self, consumer: str, handlers: Handlers) -> int:
        """Work until nothing is ready now (retries not yet due stay put). For tests and benchmarks."""
        done = 0
        while handled := await self.work(consumer, handlers, block_ms=None):
            done += handled
        return done

    def _job(self, fields: Mapping[bytes, bytes], handlers: Handlers) -> Job | Outcome:
        """The entry's job, or its dead letter when it cannot be done."""
        raw = fields.get(b"job", b"")
        try:
            job = Job.decode(raw)
        except (ValueError, KeyError, TypeError) as error:
            return self._buried(raw.decode("utf-8", "replace"), "?", f"unreadable job: {error!r}")
        if job.kind not in handlers:
            return self._buried(job.encode(), job.kind, f"no handler for job kind {job.kind!r}")
        return job

    async def _outcomes(self, step: _Step, is_outage: OutageTest) -> list[Outcome]:
        """Run the step; what becomes of each of its jobs."""
        try:
            await step.run()
        except RetryLater as later:
            return [Outcome(retry=job, retry_in_seconds=later.seconds) for job in step.jobs]
        except Exception as error:  # noqa: BLE001 - any failure is retried, then dead-lettered
            if is_outage(error):
                return [Outcome(retry=job, retry_in_seconds=OUTAGE_RETRY_SECONDS, outage=error) for job in step.jobs]
            return [self._failed(job, error) for job in step.jobs]
        return [Outcome() for _ in step.jobs]

    def _failed(self, job: Job, error: Exception) -> Outcome:
        if job.attempt >= self.max_attempts:
            return self._buried(job.encode(), job.kind, f"{type(error).__name__}: {error}")
        # The error's type only: its text can quote the payload (an openid in a duplicate key).
        log.warning("job %s failed (attempt %d): %s", job.kind, job.attempt, type(error).__name__)
        again = Job(job.kind, job.payload, job.attempt + 1)
        return Outcome(retry=again, retry_in_seconds=self.base_backoff_seconds * 2 ** (job.attempt - 1))

    @staticmethod
    def _buried(encoded: str, kind: str, reason: str) -> Outcome:
        # The reason is kept with the dead letter, not logged: it can quote the payload.
        log.error("job %s dead-lettered", kind)
        return Outcome(dead={"job": encoded, "reason": reason})

    async def _settle(self, settled: list[tuple[bytes, Outcome]]) -> None:
        """Acknowledge the entries, with their retries and dead letters, in one transaction."""
        if not settled:
            return
        # Done entries leave the stream, so it holds only work not yet finished.
        entry_ids = [entry_id for entry_id, _ in settled]
        outcomes = [outcome for _, outcome in settled]
        retries = {outcome.retry.encode(): time.time() + outcome.retry_in_seconds
                   for outcome in outcomes if outcome.retry is not None}
        async with self.redis.pipeline(transaction=True) as done:
            if retries:
                done.zadd(self.retries, retries)
            for outcome in outcomes:
                if outcome.dead is not None:
                    done.xadd(self.dead, outcome.dead)
            await done.xack(self.stream, self.group, *entry_ids).xdel(self.stream, *entry_ids).execute()

    # --- liveness ------------------------------------------------------------------------

    async def _redis_now(self) -> float:
        seconds, microseconds = await self.redis.time()
        return seconds + microseconds / 1e6

    async def beat(self, consumer: str) -> None:
        """This worker is working, as of now."""
        now = await self._redis_now()
        async with self.redis.pipeline(transaction=True) as beat:
            await beat.zadd(self.heartbeats, {consumer: now}).zremrangebyscore(
                self.heartbeats, "-inf", now - FORGET_WORKERS_SECONDS).execute()
        self._last_beat = time.monotonic()

    async def _beat_if_due(self, consumer: str) -> None:
        if time.monotonic() - self._last_beat >= HEARTBEAT_SECONDS:
            await self.beat(consumer)

    async def task_turn(self, task: str, seconds: float) -> bool:
        """Whether the periodic task `task` is this worker's to run for the next `seconds`: the first worker to ask
        gets it, and the others leave it alone until then, so that a task's reads do not multiply with the
        workers."""
        return await taken_for_its_time(self.redis, f"{self.task_turns}{task}", seconds)

    async def record_task_run(self, task: str) -> None:
        """The periodic task `task` has just succeeded."""
        await self.redis.hset(self.task_runs, task, await self._redis_now())

    async def status(self) -> QueueStatus:
        async def read() -> list[Any]:
            async with self.redis.pipeline(transaction=False) as reads:
                return await (reads.time().xlen(self.stream).xpending(self.stream, self.group).zcard(self.retries)
                              .xlen(self.dead).xrange(self.stream, count=1)
                              .zrevrange(self.heartbeats, 0, 0, withscores=True).hgetall(self.task_runs).execute())

        (seconds, microseconds), length, pending, retrying, dead, oldest, beats, runs = await self._in_group(read)
        return QueueStatus(
            now=seconds + microseconds / 1e6, length=length, pending=pending["pending"], retrying=retrying,
            dead=dead, oldest_job_at=int(oldest[0][0].split(b"-")[0]) / 1000 if oldest else None,
            last_heartbeat=beats[0][1] if beats else None,
            task_runs={task.decode(): float(at) for task, at in runs.items()},
        )

    async def stats(self) -> dict[str, int]:
        return (await self.status()).counts()

    async def sweep_cutoff(self, now: datetime, sweep_after: timedelta) -> datetime:
        """The latest due time (work stored, its job queued, then `sweep_after`) at which an outbox sweep may take
        a job for lost. A job queued after the oldest one still in the queue may be waiting behind it: while a
        backlog older than `sweep_after` drains, the cutoff stays that far behind the backlog's oldest job, so
        the sweep does not queue the backlog a second time."""
        status = await self.status()
        waited = status.now - status.oldest_job_at if status.oldest_job_at is not None else 0.0
        return now - max(timedelta(0), timedelta(seconds=waited + SWEEP_MARGIN_SECONDS) - sweep_after)
