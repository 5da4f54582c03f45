"""The worker: drains the job queue and runs the periodic tasks.

Like the message router, both are tables: each feature adds a line to `JOBS`
(job kind -> handler), `BATCHED_JOBS` (job kind -> handler of all of a read's
jobs of that kind at once) or `PERIODIC` (task, interval).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from datetime import datetime, timezone
from functools import partial
from typing import Any, Awaitable, Callable

from bot.conversation import RESOLVE_UNIONID_JOB
from bot.push_handler import replay_kept_pushes
from services.identity import UNIONID_SWEEP_AFTER
from services.runtime import Runtime
from services.relations import RESYNC_JOB
from services.withdrawals import PAY_JOB
from services.notifications import SEND_JOB
from services.orders import APPLY_JOB
from services.outages import REDIS_UNAVAILABLE, store_outage
from services.posters import POSTER_JOB
from stores.job_queue import Batched, JobHandler

log = logging.getLogger(__name__)

RuntimeJob = Callable[[Runtime, dict[str, Any]], Awaitable[None]]
RuntimeBatchJob = Callable[[Runtime, list[dict[str, Any]]], Awaitable[None]]
PeriodicTask = Callable[[Runtime], Awaitable[Any]]


async def resolve_unionid(runtime: Runtime, payload: dict[str, Any]) -> None:
    outcome = await runtime.identity.resolve_oa_unionid(payload["openid"])
    log.info("a follower's unionid: %s", outcome)  # an outcome, never the openid or the unionid


async def pay_withdrawal(runtime: Runtime, payload: dict[str, Any]) -> None:
    outcome = await runtime.withdrawals.advance(payload["withdrawal_id"], datetime.now(timezone.utc))
    log.info("withdrawal %s: %s", payload["withdrawal_id"], outcome)


async def resync_subtree(runtime: Runtime, payload: dict[str, Any]) -> None:
    await runtime.relations.resync(payload["member_id"])


async def apply_bind_follow_ups(runtime: Runtime) -> int:
    return await runtime.relations.apply_follow_ups()


async def requeue_stale_subtrees(runtime: Runtime) -> int:
    return await runtime.relations.requeue_stale_subtrees()


# Orders and commissions: their events, notifications, settlement, the sweeps and the daily stats.
# Both take all their jobs of one read of the queue at once: many orders' events in one transaction.
async def apply_order_events(runtime: Runtime, payloads: list[dict[str, Any]]) -> None:
    await runtime.orders.apply_pending_many([payload["order_no"] for payload in payloads])


async def send_notifications(runtime: Runtime, payloads: list[dict[str, Any]]) -> None:
    await runtime.notifications.send_many([each for payload in payloads for each in payload["ids"]])


async def settle_due_commissions(runtime: Runtime, now: datetime | None = None) -> int:
    """Commissions one by one, or the statements of the period just closed: the settlement policy says which."""
    return (await runtime.commissions.settle_due(now)).settled + (await runtime.statements.build_due(now)).settled


async def requeue_lost_jobs(runtime: Runtime, now: datetime | None = None) -> int:
    """The outbox sweep: work recorded in MongoDB whose job never reached the queue (a crash in between) or left
    it unfinished (a Redis that lost its data) is queued again once overdue: order events, notifications,
    payouts under way, followers' unionid questions and posters owed by customer-service message. (Subtree
    rewrites have their own sweep, `requeue_stale_subtrees`.)"""
    now = now or datetime.now(timezone.utc)
    unionids_due_by = await runtime.queue.sweep_cutoff(now, UNIONID_SWEEP_AFTER)
    followers = await runtime.identity.unasked_followers(now, unionids_due_by)
    for openid in followers:
        await runtime.queue.enqueue(RESOLVE_UNIONID_JOB, {"openid": openid})
    return (await runtime.orders.requeue_due(now) + await runtime.notifications.requeue_due(now)
            + await runtime.withdrawals.requeue_due(now) + len(followers) + await runtime.posters.requeue_owed(now))


async def advance_checkouts(runtime: Runtime, now: datetime | None = None) -> int:
    """Mini-program orders: unpaid ones past their time closed (a lost payment found first), paid ones left
    unconfirmed confirmed, refunds whose callback has not come asked about."""
    return sum((await runtime.checkout.advance(now)).values())


async def count_new_direct_members(runtime: Runtime, now: datetime | None = None) -> int:
    return await runtime.stats.count_binds(now)


async def count_shop_totals(runtime: Runtime, now: datetime | None = None) -> int:
    return await runtime.stats.count_totals()


async def rank_promoters(runtime: Runtime, now: datetime | None = None) -> int:
    return await runtime.stats.save_rankings(now)


async def remind_tax_declarations(runtime: Runtime, now: datetime | None = None) -> int:
    """Promoters whose income this year passed the merchant's threshold, told once a year."""
    return await runtime.tax.notify_above_threshold(now or datetime.now(timezone.utc))


async def carry_out_deletions(runtime: Runtime, now: datetime | None = None) -> int:
    """Members' deletion requests whose money is all settled now, carried out without waiting for the merchant."""
    return await runtime.data_rights.carry_out_ready(now or datetime.now(timezone.utc))


async def run_due_tasks(runtime: Runtime, now: datetime) -> dict[str, int]:
    """What the periodic order tasks do, once, as of `now`: `python -m bot jobs --now`."""
    return {
        "settled": await settle_due_commissions(runtime, now),
        "requeued": await requeue_lost_jobs(runtime, now),
        "checkouts_advanced": await advance_checkouts(runtime, now),
        "binds_counted": await count_new_direct_members(runtime, now),
        "totals_counted": await count_shop_totals(runtime, now),
        "rankings_kept": await rank_promoters(runtime, now),
        "tax_reminders": await remind_tax_declarations(runtime, now),
        "deletions_carried_out": await carry_out_deletions(runtime, now),
    }


# A poster that was not ready within WeChat's 5 s, sent by customer-service message.
async def send_poster_image(runtime: Runtime, payload: dict[str, Any]) -> None:
    await runtime.posters.deliver(payload)


SHUTDOWN_GRACE_SECONDS = 3.0

JOBS: dict[str, RuntimeJob] = {
    RESYNC_JOB: resync_subtree,
    RESOLVE_UNIONID_JOB: resolve_unionid,
    PAY_JOB: pay_withdrawal,
    POSTER_JOB: send_poster_image,
}
BATCHED_JOBS: dict[str, RuntimeBatchJob] = {
    APPLY_JOB: apply_order_events,
    SEND_JOB: send_notifications,
}
PERIODIC: list[tuple[PeriodicTask, float]] = [
    (requeue_stale_subtrees, 60.0),
    (apply_bind_follow_ups, 1.0),
    (replay_kept_pushes, 1.0),  # pushes the /wechat door kept in MongoDB while Redis was down
    (settle_due_commissions, 60.0),
    (requeue_lost_jobs, 30.0),
    (advance_checkouts, 60.0),
    (count_new_direct_members, 60.0),
    (count_shop_totals, 1.0),  # money, scans and visits into the totals the dashboard reads
    (rank_promoters, 60.0),  # the dashboard's rankings, read while fresh (services.stats.FRESH_RANKING)
    (remind_tax_declarations, 3600.0),  # a year's payouts read once an hour; each promoter told once a year
    (carry_out_deletions, 300.0),  # each waiting request's balances read every 5 minutes
]


def job_handlers(runtime: Runtime) -> dict[str, JobHandler | Batched]:
    return {**{kind: partial(handler, runtime) for kind, handler in JOBS.items()},
            **{kind: Batched(partial(handler, runtime)) for kind, handler in BATCHED_JOBS.items()}}


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def is_outage(error: BaseException) -> bool:
    return store_outage(error) is not None


async def run_every(runtime: Runtime, task: PeriodicTask, seconds: float, stop: asyncio.Event) -> None:
    """`task` every `seconds` until `stop` is set, by whichever of the running workers takes its turn first; a
    step under way is finished first."""
    in_outage = False  # told once per outage, not at every run of a task that runs each second
    while not stop.is_set():
        try:
            if await _my_turn(runtime, task, seconds):
                await task(runtime)
                await runtime.queue.record_task_run(task.__name__)
        except Exception as error:  # noqa: BLE001 - a failing task must not stop the worker; it runs again next time
            if not is_outage(error):
                log.exception("periodic task %s failed; runs again in %gs", task.__name__, seconds)
            elif not in_outage:
                log.warning("periodic task %s: a store is unavailable (%s); runs again every %gs until it is back",
                            task.__name__, type(error).__name__, seconds)
            in_outage = in_outage or is_outage(error)
        else:
            if in_outage:
                log.info("periodic task %s runs again", task.__name__)
            in_outage = False
        try:
            await asyncio.wait_for(stop.wait(), seconds)
        except asyncio.TimeoutError:
            pass


async def _my_turn(runtime: Runtime, task: PeriodicTask, seconds: float) -> bool:
    try:
        return await runtime.queue.task_turn(task.__name__, seconds)
    except REDIS_UNAVAILABLE:
        return True  # the turns live in Redis: without it each worker runs the task, as every task allows


async def run_worker(runtime: Runtime, stop: asyncio.Event) -> None:
    periodic = [asyncio.create_task(run_every(runtime, task, seconds, stop)) for task, seconds in PERIODIC]
    try:
        await runtime.queue.run(consumer_name(), job_handlers(runtime), stop, is_outage)
    finally:
        # Every task's step is one transaction: one cut short is simply done again next time.
        _, unfinished = await asyncio.wait(periodic, timeout=SHUTDOWN_GRACE_SECONDS)
        for task in unfinished:
            task.cancel()
        await asyncio.gather(*unfinished, return_exceptions=True)
