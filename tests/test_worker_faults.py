"""The worker against faults: a Redis outage that comes back empty, a SecantusDB restart, `kill -9`.

Each fault test stops only stores of its own (tests/fault_fixtures.py), never the machine's Redis nor the
session's SecantusDB, and checks that every piece of work was done exactly once: each order's commissions
once, `ledger verify` clean, each payout's transfer bill made once, each follower's unionid asked, each
notification sent once. The sweep tests before them show each kind of job that Redis can lose queued again
from MongoDB.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

from pymongo.errors import NetworkTimeout
from redis.exceptions import ConnectionError as RedisConnectionError

from bot.simulate import event_xml
from bot.worker import job_handlers, requeue_lost_jobs, run_worker
from sandbox import Fault, unionid_for
from services.posters import DELIVERY_SWEEP_AFTER
from services.withdrawals import SWEEP_AFTER as PAYOUT_SWEEP_AFTER
from tests.conftest import production_environ, start_server
from tests.fault_fixtures import mongodb_uri, own_redis, own_secantusdb, redis_url  # noqa: F401 - fixtures
from tests.order_fixtures import add_member, assert_ledger_clean, backlog_drained, backlog_queued, balances, chain, \
    commissions_of, create_order, item, send_event
from tests.test_withdrawals import credit, rules

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
PAID_FEN = 10_000
# Default commission rules: 10% to the buyer's upline, 5% to the one above.
PAID_ONCE = (1_000, 500)
REFUND_FEN = 4_000  # of PAID_FEN: the commissions keep 60%
REFUNDED_ONCE = (600, 300)
WITHDRAWAL_FEN = 1_000
MESSAGES = ("cgi-bin/message/subscribe/bizsend", "cgi-bin/message/template/send", "cgi-bin/message/subscribe/send")
LATER = timedelta(minutes=20)  # past every sweep's wait, as the periodic sweep sees it minutes later


async def until(condition, seconds: float, what: Callable[[], str]) -> None:
    deadline = time.monotonic() + seconds
    while not await condition():
        assert time.monotonic() < deadline, f"not within {seconds:g} s: {what()}"
        await asyncio.sleep(0.2)


async def outstanding(runtime, withdrawal_ids: list[str]) -> dict[str, int]:
    """The work not done yet, by kind: empty once everything is."""
    db = runtime.db
    left = {
        "order events": await db.order_events.count_documents({"state": {"$ne": "applied"}}),
        "notifications": await db.notifications.count_documents({"status": "pending"}),
        "unionid questions": await db.members.count_documents({"unionid_unasked_since": {"$exists": True}}),
        "bind follow-ups": await db.members.count_documents({"binds_to_follow_up": {"$exists": True}}),
        "payouts": await db.withdrawals.count_documents({"_id": {"$in": withdrawal_ids}, "status": "approved"}),
        **{f"queue {name}": count for name, count in (await runtime.queue.stats()).items()},
    }
    return {kind: count for kind, count in left.items() if count}


async def until_all_done(runtime, seconds: float, withdrawal_ids: list[str],
                         sweep_after: float | None = None) -> None:
    """Wait until nothing is left to do; from `sweep_after` seconds on, every 10 s, also run the periodic
    sweep as it would run minutes later (what a kill cut off between a commit and its queueing waits for it)."""
    left: dict[str, int] = {}
    started = next_sweep = time.monotonic()

    async def nothing_left() -> bool:
        nonlocal left, next_sweep
        try:
            left = await outstanding(runtime, withdrawal_ids)
            if left and sweep_after is not None and time.monotonic() >= max(next_sweep, started + sweep_after):
                next_sweep = time.monotonic() + 10
                await sweep_as_minutes_later(runtime)
        except RedisConnectionError as error:  # a pooled connection that a Redis restart closed: the next is new
            left = {repr(error): 1}
        except NetworkTimeout as error:  # the sweep waited on a document that a killed worker's open transaction
            left = {repr(error): 1}      # holds; the worker's own sweep fails the same way and runs again later
        return not left

    await until(nothing_left, seconds, lambda: f"everything done; left: {left}")


async def sweep_as_minutes_later(runtime) -> int:
    """The periodic sweep's round as it runs minutes later, when everything a Redis restart lost is overdue."""
    for _ in range(10):
        try:
            return await requeue_lost_jobs(runtime, datetime.now(timezone.utc) + LATER)
        except RedisConnectionError:  # a pooled connection that a Redis restart closed: the next is new
            await asyncio.sleep(0.1)
    raise AssertionError("Redis did not come back")


def lost_with_redis(runtime):
    """What a Redis restarted without its data has lost: every queued job and every retry."""
    return runtime.redis.delete(runtime.queue.stream, runtime.queue.retries)


async def drain(runtime) -> int:
    return await runtime.queue.drain("test-worker", job_handlers(runtime))


async def payee(runtime, name: str, fen: int) -> dict:
    """A member WeChat Pay can pay (by official-account openid), with `fen` available."""
    member = await add_member(runtime, oa_openid=f"o_payee_{name}")
    await credit(runtime, member["_id"], fen)
    return member


async def withdraw(runtime, member: dict) -> dict:
    withdrawal = await runtime.withdrawals.request(member, WITHDRAWAL_FEN, "wechat_balance", None,
                                                   datetime.now(timezone.utc))
    assert withdrawal["status"] == "approved"
    return withdrawal


async def assert_billed_once(runtime, sandbox, withdrawal_ids: list[str]) -> None:
    """One transfer bill each at WeChat Pay (a bill is made once per withdrawal id, whatever repeats), and each
    withdrawal waiting for its promoter to accept it."""
    withdrawals = await runtime.db.withdrawals.find({"_id": {"$in": withdrawal_ids}}).to_list()
    assert {each["status"] for each in withdrawals} == {"waiting_user_confirm"}
    bills = sandbox.state.pay.bills
    assert sorted(bills) == sorted(withdrawal_ids)
    assert {bill.transfer_amount for bill in bills.values()} == {each["net_fen"] for each in withdrawals}


# --- every kind of job Redis can lose is queued again from MongoDB -------------------------------


async def test_a_lost_payout_is_queued_again_by_the_sweep_and_billed_once(server, sandbox):
    runtime = server.runtime
    await rules(runtime, auto_approve_under_fen=100_000)
    withdrawal = await withdraw(runtime, await payee(runtime, "lost", 5_000))
    await lost_with_redis(runtime)

    now = datetime.now(timezone.utc)
    assert await requeue_lost_jobs(runtime, now) == 0  # not overdue: its job may still be on its way
    assert await requeue_lost_jobs(runtime, now + PAYOUT_SWEEP_AFTER + timedelta(seconds=1)) == 1
    assert await requeue_lost_jobs(runtime, now + PAYOUT_SWEEP_AFTER + timedelta(seconds=2)) == 0  # once a round
    await drain(runtime)
    await assert_billed_once(runtime, sandbox, [withdrawal["_id"]])
    await assert_ledger_clean(runtime)


async def test_a_lost_unionid_question_is_asked_again_by_the_sweep(server, sandbox):
    runtime = server.runtime
    assert (await server.push(event_xml("o_lost_fan", "subscribe"))).status_code == 200
    await lost_with_redis(runtime)

    assert await requeue_lost_jobs(runtime, datetime.now(timezone.utc) + LATER) == 1
    await drain(runtime)
    member = await runtime.members.by_oa_openid("o_lost_fan")
    assert member["unionid"] == unionid_for("o_lost_fan") and "unionid_unasked_since" not in member
    assert await requeue_lost_jobs(runtime, datetime.now(timezone.utc) + 2 * LATER) == 0


async def test_a_lost_poster_delivery_is_sent_by_the_sweep_once(server, sandbox):
    runtime = server.runtime
    promoter = await add_member(runtime, oa_openid="o_poster_fan", promoter_status="appointed")
    sandbox.state.faults.add(Fault("cgi-bin/qrcode/create", delay_seconds=1))
    deadline = asyncio.get_running_loop().time() + 0.2  # the chat reply cannot wait for it: the poster is owed
    assert await runtime.posters.for_chat(promoter, "o_poster_fan", "push-1", deadline) is None
    await lost_with_redis(runtime)

    overdue = datetime.now(timezone.utc) + DELIVERY_SWEEP_AFTER + timedelta(seconds=1)
    assert await requeue_lost_jobs(runtime, overdue) == 1
    await drain(runtime)
    assert await drain(runtime) == 0
    (sent,) = sandbox.state.calls.received("cgi-bin/message/custom/send")
    assert sent.body["touser"] == "o_poster_fan" and sent.body["msgtype"] == "image"
    assert await requeue_lost_jobs(runtime, datetime.now(timezone.utc) + LATER) == 0
    # The same job once more (a duplicate of it, or one redone): nothing more is sent.
    await runtime.queue.enqueue("send_poster", {"member_id": promoter["_id"], "openid": "o_poster_fan",
                                                "template": None, "request": "push-1"})
    await drain(runtime)
    assert len(sandbox.state.calls.received("cgi-bin/message/custom/send")) == 1


async def test_the_sweep_leaves_payouts_unionid_questions_and_posters_behind_a_backlog_alone(server, sandbox):
    """Their jobs may be waiting behind a backlog older than the sweep's wait: queued again once it drained."""
    runtime = server.runtime
    await rules(runtime, auto_approve_under_fen=100_000)
    withdrawal = await withdraw(runtime, await payee(runtime, "behind", 5_000))
    assert (await server.push(event_xml("o_behind_fan", "subscribe"))).status_code == 200
    promoter = await add_member(runtime, oa_openid="o_behind_poster", promoter_status="appointed")
    sandbox.state.faults.add(Fault("cgi-bin/qrcode/create", delay_seconds=1))
    deadline = asyncio.get_running_loop().time() + 0.2
    assert await runtime.posters.for_chat(promoter, "o_behind_poster", "push-behind", deadline) is None
    await lost_with_redis(runtime)
    await backlog_queued(runtime, 3600)  # an hour's backlog still waits: the three jobs were queued behind it

    later = datetime.now(timezone.utc) + LATER
    assert await requeue_lost_jobs(runtime, later) == 0
    await backlog_drained(runtime)
    assert await requeue_lost_jobs(runtime, later) == 3
    await drain(runtime)
    await assert_billed_once(runtime, sandbox, [withdrawal["_id"]])
    assert (await runtime.members.by_oa_openid("o_behind_fan"))["unionid"] == unionid_for("o_behind_fan")
    (sent,) = sandbox.state.calls.received("cgi-bin/message/custom/send")
    assert sent.body["touser"] == "o_behind_poster"


# --- (a) Redis goes away for 15 s and comes back empty ------------------------------------------

REDIS_OUTAGE_SECONDS = 15
ORDERS_A = 40
FOLLOWERS_A = 20
WITHDRAWALS_A = 10


def worker_process(environ: dict[str, str], log_path: Path) -> subprocess.Popen:
    with log_path.open("ab") as log_file:
        return subprocess.Popen([sys.executable, "-m", "bot", "worker"], cwd=ROOT, env=environ,
                                stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def worker_environ(sandbox, settings, tmp_path: Path) -> dict[str, str]:
    """What `python -m bot worker` needs to work on the same stores and sandbox as this test's server."""
    return {**os.environ, **production_environ(sandbox.base_url),
            **sandbox.state.pay.merchant_environ(tmp_path / "wechatpay"), "MONGODB_URI": settings.mongodb_uri,
            "MONGODB_DB": settings.mongodb_db, "REDIS_URL": settings.redis_url, "REDIS_PREFIX": settings.redis_prefix,
            "VAR_DIR": str(tmp_path / "worker-var"), "POSTER_WORKERS": "1", "STORE_TIMEOUT_SECONDS": "2"}


async def test_a_15_s_redis_outage_that_comes_back_empty_loses_no_work_and_does_none_twice(
        own_redis, make_settings, sandbox, tmp_path):
    settings = make_settings(REDIS_URL=redis_url(own_redis), STORE_TIMEOUT_SECONDS="2")
    async for server in start_server(settings):
        runtime = server.runtime
        await rules(runtime, auto_approve_under_fen=100_000)
        root, upline, buyer = await chain(runtime, 2, promoter_status="appointed")
        await runtime.db.members.update_one({"_id": upline["_id"]}, {"$set": {"oa_openid": "o_upline"}})
        payees = [await payee(runtime, str(n), 5_000) for n in range(WITHDRAWALS_A)]

        stop = asyncio.Event()
        in_server = asyncio.create_task(run_worker(runtime, stop))  # the demo's worker
        standalone = worker_process(worker_environ(sandbox, settings, tmp_path), tmp_path / "worker.log")
        try:
            # Work of every kind, queued while both workers run.
            order_nos = [f"a{n}" for n in range(ORDERS_A)]
            for order_no in order_nos:
                await create_order(runtime, order_no, buyer, [item(PAID_FEN)])
                await send_event(runtime, order_no, f"{order_no}-paid", "paid")
            fans = [f"o_fan_{n}" for n in range(FOLLOWERS_A)]
            for fan in fans:
                response = await server.push(event_xml(fan, "subscribe", f"qrscene_p:{upline['_id']}"))
                assert response.status_code == 200
            withdrawal_ids = [(await withdraw(runtime, member))["_id"] for member in payees]

            own_redis.stop()
            stopped_at = time.time()
            down = await server.http.get("/healthz")
            assert down.status_code == 503 and down.json()["redis"].startswith("down")
            await asyncio.sleep(REDIS_OUTAGE_SECONDS)
            assert not in_server.done() and standalone.poll() is None  # both waited it out
            own_redis.start()  # empty: the queue, its group and every retry are gone

            assert await sweep_as_minutes_later(runtime) > 0  # whatever the empty Redis lost is queued again
            await until_all_done(runtime, 60, withdrawal_ids)

            # Exactly once.
            for order_no in order_nos:
                assert await commissions_of(runtime, order_no) == [
                    (upline["_id"], 1, PAID_ONCE[0], "frozen"), (root["_id"], 2, PAID_ONCE[1], "frozen")]
            assert await balances(runtime, upline) == (PAID_ONCE[0] * ORDERS_A, 0, 0)
            assert await balances(runtime, root) == (PAID_ONCE[1] * ORDERS_A, 0, 0)
            await assert_ledger_clean(runtime)
            await assert_billed_once(runtime, sandbox, withdrawal_ids)
            for fan in fans:
                member = await runtime.members.by_oa_openid(fan)
                assert member["unionid"] == unionid_for(fan) and member["upline_id"] == upline["_id"]
            assert (await runtime.members.get(upline["_id"]))["direct_count"] == 1 + FOLLOWERS_A
            for kind, count in (("commission_arrived", ORDERS_A), ("new_direct_member", FOLLOWERS_A)):
                assert await runtime.db.notifications.count_documents({"kind": kind, "status": "sent"}) == count
            sent = await runtime.db.notifications.count_documents({"status": "sent"})
            assert sum(len(sandbox.state.calls.received(endpoint)) for endpoint in MESSAGES) == sent  # none twice

            # Both workers kept working: their periodic tasks ran after the outage, and /healthz is well.
            status = await runtime.queue.status()  # Redis came back empty: these ran since
            assert "apply_bind_follow_ups" in status.task_runs  # every second, in each worker
            assert all(at > stopped_at for at in status.task_runs.values())
            async def healthy() -> bool:
                answer = await server.http.get("/healthz")
                log.info("/healthz: %s %s", answer.status_code, answer.text)
                return answer.status_code == 200

            await until(healthy, 10, lambda: "/healthz well again")
            assert not in_server.done() and standalone.poll() is None
            log.info("Redis outage: %d order events, %d follows, %d payouts, 1 fault of %d s, 0 lost, 0 twice",
                     ORDERS_A, FOLLOWERS_A, WITHDRAWALS_A, REDIS_OUTAGE_SECONDS)
        finally:
            stop.set()
            standalone.send_signal(signal.SIGTERM)
            await asyncio.wait_for(in_server, 15)
            assert await asyncio.to_thread(standalone.wait, 15) == 0  # it stops when told, not before


# --- (b) SecantusDB stops and starts again while the worker applies order events ----------------

ORDERS_B = 150
MONGO_OUTAGE_SECONDS = 6


async def test_a_secantusdb_restart_while_order_events_are_applied_loses_none_and_applies_none_twice(
        own_secantusdb, make_settings):
    settings = make_settings(MONGODB_URI=mongodb_uri(own_secantusdb), STORE_TIMEOUT_SECONDS="2")
    async for server in start_server(settings):
        runtime = server.runtime
        root, upline, buyer = await chain(runtime, 2)
        order_nos = [f"b{n}" for n in range(ORDERS_B)]
        for order_no in order_nos:
            await create_order(runtime, order_no, buyer, [item(PAID_FEN)])
            await send_event(runtime, order_no, f"{order_no}-paid", "paid")

        stop = asyncio.Event()
        worker = asyncio.create_task(run_worker(runtime, stop))
        try:
            async def some_applied() -> bool:
                return await runtime.db.order_events.count_documents({"state": "applied"}) >= ORDERS_B // 5

            await until(some_applied, 30, lambda: "the worker under way")
            applied_before = await runtime.db.order_events.count_documents({"state": "applied"})
            own_secantusdb.stop()  # mid-flight: a transaction or two is cut off
            assert applied_before < ORDERS_B
            await asyncio.sleep(MONGO_OUTAGE_SECONDS)
            assert not worker.done()
            own_secantusdb.start()  # the same data files, reopened

            await until_all_done(runtime, 60, [])
            for order_no in order_nos:
                assert await commissions_of(runtime, order_no) == [
                    (upline["_id"], 1, PAID_ONCE[0], "frozen"), (root["_id"], 2, PAID_ONCE[1], "frozen")]
            assert await balances(runtime, upline) == (PAID_ONCE[0] * ORDERS_B, 0, 0)
            assert await balances(runtime, root) == (PAID_ONCE[1] * ORDERS_B, 0, 0)
            await assert_ledger_clean(runtime)
            assert not worker.done()
            log.info("SecantusDB restart: %d order events, 1 fault of %d s, 0 lost, 0 twice", ORDERS_B,
                     MONGO_OUTAGE_SECONDS)
        finally:
            stop.set()
            await asyncio.wait_for(worker, 15)


# --- (c) kill -9 of worker processes during 200 order events and 20 payouts ---------------------

ORDERS_C = 100  # each paid, then confirmed or partly refunded: 200 events
WITHDRAWALS_C = 20
KILLS = 6
SEED = 20_240_501


async def test_workers_killed_at_random_moments_leave_every_event_and_payout_done_exactly_once(
        make_settings, sandbox, tmp_path, redis_prefix):
    rng = random.Random(SEED)
    settings = make_settings()
    async for server in start_server(settings):
        runtime = server.runtime
        await rules(runtime, auto_approve_under_fen=100_000)
        root, upline, buyer = await chain(runtime, 2)
        order_nos = [f"c{n}" for n in range(ORDERS_C)]
        refunded = set(rng.sample(order_nos, ORDERS_C // 2))
        payees = [await payee(runtime, str(n), 5_000) for n in range(WITHDRAWALS_C)]
        environ = worker_environ(sandbox, settings, tmp_path)

        async def the_shop() -> list[str]:
            """Orders, their events and withdrawals arriving while workers come and go."""
            withdrawal_ids = []
            for n, order_no in enumerate(order_nos):
                await create_order(runtime, order_no, buyer, [item(PAID_FEN)])
                await send_event(runtime, order_no, f"{order_no}-paid", "paid")
                if n % (ORDERS_C // WITHDRAWALS_C) == 0:
                    withdrawal_ids.append((await withdraw(runtime, payees[len(withdrawal_ids)]))["_id"])
                await asyncio.sleep(rng.uniform(0, 0.08))
            for order_no in order_nos:
                if order_no in refunded:
                    await send_event(runtime, order_no, f"{order_no}-refund", "refunded",
                                     items=[{"sku": "tea", "refund_fen": REFUND_FEN}])
                else:
                    await send_event(runtime, order_no, f"{order_no}-confirmed", "confirmed")
            return withdrawal_ids

        shop = asyncio.create_task(the_shop())
        kills = 0
        while kills < KILLS:
            worker = worker_process(environ, tmp_path / f"worker-{kills}.log")
            await asyncio.sleep(rng.uniform(1.0, 3.0))  # started, or busy with a batch, or between two
            worker.send_signal(signal.SIGKILL)
            await asyncio.to_thread(worker.wait, 10)
            kills += 1
        withdrawal_ids = await shop
        survivor = worker_process(environ, tmp_path / "survivor.log")
        try:
            # The killed workers' jobs are claimed once idle for 30 s; a batch's transaction a kill left open is
            # ended by the next worker's turn to commit, any other holds its documents until the database gives
            # up on it (60 s); a notification a kill left locked, or cut off between its commit and its queueing,
            # waits for the periodic sweep, minutes later.
            await until_all_done(runtime, 150, withdrawal_ids, sweep_after=60)
        finally:
            survivor.send_signal(signal.SIGTERM)
            await asyncio.to_thread(survivor.wait, 15)

        for order_no in order_nos:
            expected = REFUNDED_ONCE if order_no in refunded else PAID_ONCE
            assert await commissions_of(runtime, order_no) == [
                (upline["_id"], 1, expected[0], "frozen"), (root["_id"], 2, expected[1], "frozen")]
        halves = len(refunded), ORDERS_C - len(refunded)
        assert await balances(runtime, upline) == (REFUNDED_ONCE[0] * halves[0] + PAID_ONCE[0] * halves[1], 0, 0)
        assert await balances(runtime, root) == (REFUNDED_ONCE[1] * halves[0] + PAID_ONCE[1] * halves[1], 0, 0)
        await assert_ledger_clean(runtime)
        await assert_billed_once(runtime, sandbox, withdrawal_ids)
        log.info("kill -9: %d order events, %d payouts, %d workers killed, 0 lost, 0 twice", 2 * ORDERS_C,
                 WITHDRAWALS_C, KILLS)
