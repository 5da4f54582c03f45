"""Paid orders end to end through the worker (python -m bench.orders).

One run, on one embedded SecantusDB (on disk in a scratch directory, as
`python -m bot serve` runs it: its in-memory engine slows as it fills, two to
three and a half times slower after the 10,000-event burst; a child process started here,
connected to as the server connects to its own), the Redis at
127.0.0.1:6379 under a key prefix of its own (whose keys, and only those,
are deleted at the end) and the sandbox WeChat in-process:

1. raw: the single-document insert_one rate of the same database (a loop of
   insert_one into a scratch collection; half before the orders, half after,
   so that both see the database in the same state), the baseline.
2. orders: paid orders per second end to end. Each order is POSTed to the
   merchant API with `paid_at` (one HTTP request to the running app), and
   the worker (`--workers` consumers of the queue and the periodic tasks,
   in this process) applies it: three commissions frozen with their ledger
   entries and balances, the promoters' daily stats, and four notifications
   (three promoters by bizsend, one merchant admin by template message) sent
   to the sandbox.
   Timed from the first request to the last notification sent.
2b. checkouts: mini-program orders per second end to end (`--checkouts`, 0 for none): POST /api/v1/orders,
   the buyer pays at the sandbox's WeChat Pay, its callback comes back over HTTP, the worker posts the
   commissions; printed beside phase 2's merchant-API rate.
3. commands per paid order, counted with a pymongo CommandListener on the
   app's own client (and Redis commands with a counting client): a buyer
   3 deep and a buyer 30 deep, 3 commission levels either way, the same
   sequence of requests and jobs. Then the same in the chain-move mode
   (链动2+1: direct, team and peer rewards) for a buyer whose team-owner
   chain is 3 long and one whose chain is 300 long, the two bosses at its
   top: the payment reads the buyer and its owners' roles (one `$in`),
   whatever the length.
4. a burst of `--burst` paid events: `--burst` orders created unpaid, then
   their `paid` events POSTed as fast as the API takes them while the
   workers drain; the drain rate against phase 1's raw rate, and the
   commands per paid order amortised over the burst (the event's request
   and all the workers did for it); then checked: every order paid, every
   commission there, nothing pending, retried or dead in the queue,
   `ledger verify` clean. In this phase and the next, how busy the database
   and each of our processes were while the burst drained (CpuShare), and
   the database's own time per paid order by operation and collection (its
   `top` command): where a paid order's cost lies in the database.
5. worker processes: a burst of `--process-burst` paid events (default
   `--burst`) drained by one `python -m bot worker` process started for it,
   then another burst by two: each drain rate; the API's p50/p99 for single
   events POSTed while the backlog drains (200 of them, 50 ms apart: a
   shop's own pace, not the burst's clients queueing behind each other);
   the database's operations per event (its `serverStatus` opcounters); each
   worker's RSS before and after. Its promoters have no openids, so their
   notifications are skipped, and the sandbox answers the admin's at once;
   with `--wechat-delay SECONDS` they have openids and the sandbox answers
   every message send after that delay, as WeChat would: the drain at
   WeChat's pace.

Flags: --orders, --checkouts, --depth-orders, --burst, --process-burst, --wechat-delay, --workers, --clients,
--chains, and --mongodb-uri to run against another MongoDB
(a scratch database in it, dropped at the end) instead of an embedded SecantusDB.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import types
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis
from bson import ObjectId
import pymongo
from pymongo import AsyncMongoClient, monitoring
from pymongo.errors import OperationFailure

import bot.runtime
import stores.mongo
from bot.app import make_app
from bot.runtime import open_runtime
from bot.worker import PERIODIC, is_outage, job_handlers, run_every
from distribution.chain_move import ChainMoveSettings, Role
from distribution.commission_rules import CommissionRules
from distribution.money import MAX_FEN
from distribution.risk import CommissionSpike, RiskSettings
from sandbox import Fault, start_sandbox
from settings import load_settings
from stores.embedded import free_port, secantusdb_uri, start_secantusdb
from stores.members import new_member_fields

REDIS_URL = "redis://127.0.0.1:6379/0"
TOKEN = "bench-merchant-token-0123456789abcdef"
BIZSEND = "cgi-bin/message/subscribe/bizsend"  # the sandbox's message sends: the promoters', the admin's
TEMPLATE_SEND = "cgi-bin/message/template/send"
T0 = datetime(2026, 5, 1, 4, 0, tzinfo=timezone.utc)
DROP_SECONDS = 120.0
# The database's own counts, printed per event while worker processes drain a burst: with one process and with
# two the same work should be asked of it.
OPERATION_KINDS = ("insert", "query", "update", "command")
PROBES, PROBE_PAUSE = 200, 0.05  # the API's latency while a backlog drains: single requests this far apart


class CommandCounter(monitoring.CommandListener):
    def __init__(self) -> None:
        self.commands: Counter[tuple[str, str]] = Counter()
        self.micros: Counter[tuple[str, str]] = Counter()
        self.failures: Counter[str] = Counter()
        self._targets: dict[int, tuple[str, str]] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        target = event.command.get(event.command_name)
        key = (event.command_name, target if isinstance(target, str) else "")
        self.commands[key] += 1
        self._targets[event.request_id] = key

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self.micros[self._targets.pop(event.request_id, (event.command_name, ""))] += event.duration_micros

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self.micros[self._targets.pop(event.request_id, (event.command_name, ""))] += event.duration_micros
        self.failures[event.command_name] += 1


class CountingRedis(aioredis.Redis):
    """Counts every command; a pipeline (the queue's acknowledgement) counts as one round trip."""

    counts: Counter[str] = Counter()

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        name = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
        CountingRedis.counts[name.upper()] += 1
        return await super().execute_command(*args, **options)

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        CountingRedis.counts["PIPELINE"] += 1
        return super().pipeline(transaction, shard_hint)


def members_chain(depth: int, openids: bool) -> list[dict]:
    """depth + 1 members, each the upline of the next; the last is the buyer."""
    members: list[dict] = []
    for level in range(depth + 1):
        upline = members[-1] if members else None
        document = {**new_member_fields(T0 - timedelta(days=30)), "nickname": f"m{level}"}
        if openids:
            document["oa_openid"] = f"oa_{document['_id']}"
        if upline:
            document.update(upline_id=upline["_id"], ancestor_ids=[upline["_id"], *upline["ancestor_ids"]],
                            bound_at=T0 - timedelta(days=20), bind_source="oa_scan")
        members.append(document)
    return members


def chain_move_chain(depth: int) -> list[dict]:
    """`members_chain` as the chain-move mode keeps it: each member's team owner is its upline, the two at the
    top are bosses and the rest agents, so the buyer's rewards go to its upline (direct), the second member
    (team) and the root (peer) whatever the depth."""
    members = members_chain(depth, True)
    for index, member in enumerate(members):
        member.update(role=Role.BOSS if index < 2 else Role.AGENT, owner_ids=member["ancestor_ids"],
                      referral_count=0 if index == depth else 1)
    return members


def order_body(order_no: str, buyer: dict, paid: bool) -> dict:
    body = {"order_no": order_no, "buyer": {"member_id": buyer["_id"]},
            "items": [{"sku": "tea", "title": "龙井茶", "qty": 1, "paid_fen": 10_000}]}
    if paid:
        body["paid_at"] = T0.isoformat()
    return body


async def workers_until(runtime: Any, count: int, done: asyncio.Event, periodic: bool = True) -> None:
    """`count` queue consumers, and the periodic tasks unless told not to, as `python -m bot worker` runs them:
    the shop's totals are counted while orders are applied, as they would be, not left for a later phase."""
    handlers = job_handlers(runtime)
    # The worker's own loop: a batch the database did not finish in time is retried after a pause, not the end
    # of the consumer (which left a burst undrained, and the benchmark waiting for it, for good).
    await asyncio.gather(*(runtime.queue.run(f"bench-{n}", handlers, done, is_outage) for n in range(count)),
                         *(run_every(runtime, task, seconds, done) for task, seconds in PERIODIC if periodic))


async def queue_idle(runtime: Any) -> bool:
    stats = await runtime.queue.stats()
    return stats["length"] == 0 and stats["pending"] == 0 and stats["retrying"] == 0


async def post_all(http: httpx.AsyncClient, requests: list[tuple[str, dict]], clients: int,
                   latencies: list[float] | None = None) -> list[int]:
    """POST `requests` from `clients` concurrent clients; the statuses, and each request's seconds into
    `latencies` if given."""
    source = iter(requests)
    statuses: list[int] = []

    async def client() -> None:
        for path, body in source:
            start = time.perf_counter()
            statuses.append((await http.post(path, json=body)).status_code)
            if latencies is not None:
                latencies.append(time.perf_counter() - start)

    await asyncio.gather(*(client() for _ in range(clients)))
    return statuses


async def through_the_worker(runtime: Any, http: httpx.AsyncClient, requests: list[tuple[str, dict]],
                             args: argparse.Namespace, periodic: bool = True) -> tuple[float, float, list[int]]:
    """POST `requests` while the workers run; (seconds to accept them all, seconds until all done, statuses)."""
    done = asyncio.Event()
    workers = asyncio.create_task(workers_until(runtime, args.workers, done, periodic))
    start = time.perf_counter()
    statuses = await post_all(http, requests, args.clients)
    accepted = time.perf_counter() - start
    while not await queue_idle(runtime):
        await asyncio.sleep(0.05)
    finished = time.perf_counter() - start
    done.set()
    await workers
    return accepted, finished, statuses


async def run(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="bench-orders-"))
    prefix = f"bench:{uuid.uuid4().hex[:12]}:"
    database = start_secantusdb(workdir / "secantusdb", workdir / "secantusdb.log") if not args.mongodb_uri else None
    mongodb_uri = args.mongodb_uri or secantusdb_uri(database.port)
    sandbox = await start_sandbox()
    listener = CommandCounter()

    def open_mongo(uri: str, db_name: str, timeout_seconds: float) -> tuple[AsyncMongoClient, Any]:
        # As the runtime opens it, plus the listener.
        return stores.mongo.open_mongo(uri, db_name, timeout_seconds, event_listeners=[listener])

    bot.runtime.open_mongo = open_mongo
    bot.runtime.aioredis = types.SimpleNamespace(from_url=CountingRedis.from_url)
    environ = {
        "DEMO": "1",
        "MONGODB_URI": mongodb_uri,
        "MONGODB_DB": f"bench_orders_{uuid.uuid4().hex[:8]}", "REDIS_URL": REDIS_URL, "REDIS_PREFIX": prefix,
        "WECHAT_API_BASE": sandbox.base_url, "MERCHANT_API_TOKEN": TOKEN, "VAR_DIR": str(workdir / "var"),
        "MERCHANT_ADMIN_OPENIDS": "bench_admin",
    }
    settings = load_settings(environ, env_file=None)
    args.worker_environ = {**os.environ, **environ, "VAR_DIR": str(workdir / "worker-var")}  # phase 5's processes
    args.database_pid = database.process.pid if database is not None else None
    # The sandbox's WeChat Pay merchant, for the checkout run (its callbacks are rerouted to this server).
    settings = dataclasses.replace(settings, wechat_pay=sandbox.state.pay.demo_settings(),
                                   wechat_pay_api_base=sandbox.base_url, public_base_url="https://bench.example.test")
    try:
        async with open_runtime(settings) as runtime:
            port = free_port()
            server = make_app(runtime).listen(port, address="127.0.0.1")
            limits = httpx.Limits(max_connections=args.clients)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60, limits=limits,
                                         headers={"Authorization": f"Bearer {TOKEN}"}) as http:
                try:
                    return await measure(runtime, http, args, mongodb_uri, prefix, sandbox, listener)
                finally:
                    server.stop()
                    keys = [key async for key in runtime.redis.scan_iter(match=f"{prefix}*", count=1000)]
                    if keys:
                        await runtime.redis.delete(*keys)
                    with pymongo.timeout(DROP_SECONDS):  # a full run's database takes SecantusDB longer than 5 s
                        await runtime.mongo.drop_database(settings.mongodb_db)
                    print(f"\ncleanup: deleted {len(keys)} Redis key(s) under {prefix}, dropped {settings.mongodb_db}")
    finally:
        await sandbox.stop()
        if database is not None:
            database.stop()
        shutil.rmtree(workdir, ignore_errors=True)


async def measure(runtime: Any, http: httpx.AsyncClient, args: argparse.Namespace, mongodb_uri: str, prefix: str,
                  sandbox: Any, listener: CommandCounter) -> int:
    db = runtime.db
    runtime.merchant_settings.cache_seconds = 3600  # one settings read, not one every 5 s
    await runtime.merchant_settings.put(CommissionRules(levels=3, level_rates_bp=(1000, 500, 200)))
    # The bench's promoters earn far more in a day than in the days before (they have none): the spike rule would
    # flag them on every order, an update of one flag that a shop's promoters do not pay. Checked, never firing.
    await runtime.merchant_settings.put(RiskSettings(commission_spike=CommissionSpike(min_fen=MAX_FEN)))
    where = mongodb_uri if args.mongodb_uri else f"SecantusDB (on disk) at {mongodb_uri}"
    print(f"Paid orders end to end, python -m bench.orders: {where}, "
          f"Redis {REDIS_URL} (keys under {prefix}), sandbox WeChat in-process")
    print(f"  rules: 3 levels (10%, 5%, 2%); workers: {args.workers} queue consumers; HTTP clients: {args.clients}; "
          "risk rules on, the commission spike never reached")

    shallow, deep = members_chain(3, True), members_chain(30, True)
    chain_move_shallow, chain_move_deep = chain_move_chain(3), chain_move_chain(300)
    # Buyers of the throughput and burst phases: each under its own 3-deep chain, so concurrent workers
    # contend as little as real traffic spread over many promoters would (one hot chain: --chains 1).
    loud = [members_chain(3, True) for _ in range(args.chains)]
    quiet = [members_chain(3, False) for _ in range(args.chains)]
    everyone = shallow + deep + chain_move_shallow + chain_move_deep + [m for chain in loud + quiet for m in chain]
    for start in range(0, len(everyone), 20):  # small batches: a 300-deep member's chains index 600 entries
        await db["members"].insert_many(everyone[start:start + 20])

    # ---- 1. the raw single-insert rate, half before and half after the orders (the database's state,
    # e.g. SecantusDB's table of retryable writes, changes as it fills: both see the same)
    raw_n, raw_seconds = args.orders * 4, 0.0

    async def raw_inserts(count: int) -> None:
        nonlocal raw_seconds
        start = time.perf_counter()
        for number in range(count):
            await db["bench_raw"].insert_one({"_id": str(ObjectId()), "n": number, "at": T0})
        raw_seconds += time.perf_counter() - start

    # Warm up: connections, the access token, the settings cache, and each counted buyer's first order (which
    # alone records the buyer's first purchase).
    counted_buyers = (shallow, deep, chain_move_shallow, chain_move_deep)
    await through_the_worker(runtime, http, [("/api/merchant/v1/orders", order_body(f"W{n}", shallow[-1], True))
                                             for n in range(10)], args)
    await through_the_worker(runtime, http, [("/api/merchant/v1/orders", order_body(f"WB{index}", members[-1], True))
                                             for index, members in enumerate(counted_buyers)], args)
    await raw_inserts(raw_n // 2)

    # ---- 2. paid orders per second, end to end
    requests = [("/api/merchant/v1/orders", order_body(f"E{n:05d}", loud[n % args.chains][-1], True))
                for n in range(args.orders)]
    bizsend_before = (len(sandbox.state.calls.received(BIZSEND)))
    failures_before = Counter(listener.failures)
    accepted, finished, statuses = await through_the_worker(runtime, http, requests, args)
    order_rate = args.orders / finished
    conflicts = sum((Counter(listener.failures) - failures_before).values())
    await raw_inserts(raw_n - raw_n // 2)
    raw_rate = raw_n / raw_seconds
    paid = await db["orders"].count_documents({"_id": {"$regex": "^E"}, "status": "paid"})
    sent = (len(sandbox.state.calls.received(BIZSEND))) - bizsend_before
    print(f"\n1-2. Throughput ({args.orders} orders, buyers 3 deep under {args.chains} chains):")
    print(f"  {'raw insert_one (sequential)':44}{raw_rate:>9.1f} docs/s   ({raw_n} documents, half before and "
          "half after the orders)")
    print(f"  {'paid orders, API -> worker -> notified':44}{order_rate:>9.1f} orders/s ({finished:.2f} s; API took "
          f"them all in {accepted:.2f} s, {args.orders / accepted:.0f}/s)")
    print(f"  ratio paid orders / raw inserts = {order_rate / raw_rate:.3f}")
    print(f"  check: {paid}/{args.orders} paid, HTTP {dict(Counter(statuses))}, {sent} promoter notifications sent "
          f"(expected {3 * args.orders}); {conflicts} commands failed and retried (write conflicts)")
    checkouts_ok = await checkout_throughput(runtime, http, args, sandbox, order_rate) if args.checkouts else True

    # ---- 3. commands per paid order, depth 3 and depth 30; then the chain-move mode at 3 and 300
    print(f"\n3. Commands per paid order ({args.depth_orders} orders each, one at a time: the API request, then the "
          "worker's jobs until the queue is empty):")
    same = await commands_per_order(runtime, http, args, listener, "", (("buyer 3 deep", shallow),
                                                                         ("buyer 30 deep", deep)))
    await runtime.merchant_settings.put(ChainMoveSettings(enabled=True, acknowledge_legal_risk=True,
                                                          peer_reward_bp=200))
    await runtime.merchant_settings.get(ChainMoveSettings)  # cached again before counting
    print("  the chain-move mode (direct 10%, team 5%, peer 2%):")
    same_chain_move = await commands_per_order(runtime, http, args, listener, "CM", (
        ("owner chain 3", chain_move_shallow), ("owner chain 300", chain_move_deep)))
    await runtime.merchant_settings.put(ChainMoveSettings())

    # ---- 4. a burst of paid events
    print(f"\n4. A burst of {args.burst} paid events (orders created unpaid first; buyer 3 deep, promoters "
          "without openids: notifications recorded and skipped):")
    start = time.perf_counter()
    create = [("/api/merchant/v1/orders", order_body(f"B{n:05d}", quiet[n % args.chains][-1], False))
              for n in range(args.burst)]
    statuses = await post_all(http, create, args.clients)
    print(f"  {args.burst} orders created in {time.perf_counter() - start:.1f} s ({dict(Counter(statuses))})")
    events = [(f"/api/merchant/v1/orders/B{n:05d}/events", {"event_id": "paid", "type": "paid",
                                                            "at": T0.isoformat()}) for n in range(args.burst)]
    max_backlog = 0

    async def watch(stop: asyncio.Event) -> None:
        nonlocal max_backlog
        while not stop.is_set():
            max_backlog = max(max_backlog, (await runtime.queue.stats())["length"])
            await asyncio.sleep(0.5)

    stop_watch = asyncio.Event()
    watcher = asyncio.create_task(watch(stop_watch))
    failures_before = Counter(listener.failures)
    mongo_before, redis_before = Counter(listener.commands), Counter(CountingRedis.counts)
    busy = CpuShare({"SecantusDB": args.database_pid, "this process (API, workers, clients)": os.getpid()})
    time_before = await database_time(runtime)
    busy.start()
    accepted, finished, statuses = await through_the_worker(runtime, http, events, args)
    shares = busy.shares()
    time_after = await database_time(runtime)
    mongo_commands = sum((Counter(listener.commands) - mongo_before).values())
    redis_commands = sum((Counter(CountingRedis.counts) - redis_before).values())
    conflicts = sum((Counter(listener.failures) - failures_before).values())
    stop_watch.set()
    await watcher
    paid = await db["orders"].count_documents({"_id": {"$regex": "^B"}, "status": "paid"})
    commissions = await db["commissions"].count_documents({"order_no": {"$regex": "^B"}})
    unapplied = await db["order_events"].count_documents({"state": "pending"}) + \
        await db["order_events"].count_documents({"state": "waiting"})
    queue = await runtime.queue.stats()
    report = await runtime.ledger.verify()
    print(f"  accepted by the API in {accepted:.1f} s ({args.burst / accepted:.0f} events/s, "
          f"HTTP {dict(Counter(statuses))}); queue backlog peaked at {max_backlog} jobs")
    burst_rate = args.burst / finished
    print(f"  all applied in {finished:.1f} s ({burst_rate:.1f} paid orders/s; {conflicts} commands "
          "failed and retried)")
    print(f"  CPU busy while it drained, in % of one core: {shares}")
    print(f"  the database's time per paid order, by operation and collection: "
          f"{time_per_order(time_before, time_after, args.burst)}")
    # The database slows as it fills: its raw rate again, as the burst left it, for a ratio in the same state.
    raw_seconds, raw_before = 0.0, raw_rate
    await raw_inserts(raw_n // 2)
    raw_rate = raw_n // 2 / raw_seconds
    print(f"  raw insert_one now, as the burst left the database: {raw_rate:.1f} docs/s (phase 1: {raw_before:.1f})")
    print(f"  ratio burst drain / raw inserts = {burst_rate / raw_rate:.3f} (against phase 1's rate: "
          f"{burst_rate / raw_before:.3f})")
    print(f"  commands per paid order, amortised (the event's request and everything the workers did): Mongo "
          f"{mongo_commands / args.burst:.1f}, Redis {redis_commands / args.burst:.1f} (queue polling included)")
    print(f"  check: {paid}/{args.burst} orders paid, {commissions}/{3 * args.burst} commissions, {unapplied} events "
          f"unapplied, queue {queue}")
    print(f"  ledger verify: {'clean' if report.clean else 'NOT BALANCED'} ({report.accounts} accounts, "
          f"{report.entries} entries, {len(report.differences)} differences)")
    ok = (same and same_chain_move and checkouts_ok and report.clean and paid == args.burst and commissions == 3 * args.burst
          and unapplied == 0 and queue["dead"] == 0)
    if args.process_burst:
        print(f"\n5. Worker processes (python -m bot worker, periodic tasks and all): a burst of {args.process_burst} "
              "paid events each, with 1 process, then with 2; the API's latency while the backlog drains:")
        if args.wechat_delay:
            print(f"  (promoters with openids; the sandbox answers each message send in {args.wechat_delay} s)")
            for endpoint in (TEMPLATE_SEND, BIZSEND):
                sandbox.state.faults.add(Fault(endpoint, delay_seconds=args.wechat_delay, times=None))
        for processes in (1, 2):
            ok = await process_burst(runtime, http, args, processes, loud if args.wechat_delay else quiet,
                                     raw_rate) and ok
    print(f"\n{'OK' if ok else 'FAILED'}")
    return 0 if ok else 1


def cpu_seconds(pid: int) -> float:
    """The user and system CPU seconds the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuShare:
    """How busy each named process was between `start()` and `shares()`, in percent of one core: the database
    at ~100% is the ceiling of a SecantusDB, which serves every command under one Python GIL."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        self.pids = {name: pid for name, pid in pids.items() if pid is not None}
        self.before: dict[str, float] = {}
        self.started = 0.0

    def start(self) -> None:
        self.before = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self.started = time.perf_counter()

    def shares(self) -> str:
        elapsed = time.perf_counter() - self.started
        return ", ".join(f"{name} {100 * (cpu_seconds(pid) - self.before[name]) / elapsed:.0f}%"
                         for name, pid in self.pids.items())


# `top`'s sections, as the operations they time. `top` is the database's own time in each collection (on
# MongoDB and SecantusDB, waits for its locks included): where a paid order's time goes in the database.
TOP_SECTIONS = {"queries": "find", "getmore": "getMore", "insert": "insert", "update": "update", "remove": "delete",
                "commands": "command"}
TOP_SHOWN = 8


async def database_time(runtime: Any) -> Counter[str] | None:
    """Microseconds the database has spent in each operation on each of this run's collections ("update orders"),
    or None where `top` is not allowed (a hosted MongoDB's shared tier)."""
    try:
        totals = (await runtime.db.client.admin.command("top"))["totals"]
    except OperationFailure:
        return None
    prefix = f"{runtime.db.name}."
    return Counter({f"{operation} {namespace.removeprefix(prefix)}": entry[section]["time"]
                    for namespace, entry in totals.items() if namespace.startswith(prefix)
                    for section, operation in TOP_SECTIONS.items() if entry[section]["time"]})


def time_per_order(before: Counter[str] | None, after: Counter[str] | None, orders: int) -> str:
    """The database's milliseconds per paid order between two `database_time`s: in all, and its costliest parts."""
    if before is None or after is None:
        return "not available (the database refused `top`)"
    spent = after - before
    costliest = ", ".join(f"{name} {micros / 1000 / orders:.1f}" for name, micros in spent.most_common(TOP_SHOWN))
    return f"{sum(spent.values()) / 1000 / orders:.1f} ms in all; {costliest} ms"


async def database_operations(runtime: Any) -> dict[str, int]:
    """The database's operation counts since it started (`serverStatus` opcounters, on MongoDB and SecantusDB)."""
    return (await runtime.db.client.admin.command("serverStatus"))["opcounters"]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


async def probe(http: httpx.AsyncClient, events: list[tuple[str, dict]], until_idle: Any) -> list[float]:
    """POST `events` one at a time, PROBE_PAUSE apart, while the queue is not idle: each request's seconds."""
    latencies: list[float] = []
    for path, body in events:
        if await until_idle():
            break
        await post_all(http, [(path, body)], 1, latencies)
        await asyncio.sleep(PROBE_PAUSE)
    return latencies


async def process_burst(runtime: Any, http: httpx.AsyncClient, args: argparse.Namespace, processes: int,
                        buyers: list[list[dict]], raw_rate: float) -> bool:
    """`--process-burst` paid events drained by `processes` worker processes started for it: the drain rate,
    the API's p50/p99 for single events sent while the backlog drains (a shop's own pace, not the burst's
    clients queueing behind one another), each worker's RSS before and after."""
    tag = f"P{processes}-"
    count = args.process_burst + PROBES
    create = [("/api/merchant/v1/orders", order_body(f"{tag}{n:05d}", buyers[n % len(buyers)][-1], False))
              for n in range(count)]
    await post_all(http, create, args.clients)
    started_at = (await runtime.queue.status()).now
    workers = [subprocess.Popen([sys.executable, "-m", "bot", "worker"], env=args.worker_environ,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
               for _ in range(processes)]
    try:
        # Started when each has written its heartbeat; then idle for a moment, the RSS a worker settles at.
        while await runtime.redis.zcount(runtime.queue.heartbeats, started_at, "+inf") < processes:
            assert all(worker.poll() is None for worker in workers), "a worker process exited"
            await asyncio.sleep(0.2)
        await asyncio.sleep(2)
        before = [rss_mib(worker.pid) for worker in workers]
        busy = CpuShare({"SecantusDB": args.database_pid, "the API's process": os.getpid(),
                         **{f"worker {n + 1}": worker.pid for n, worker in enumerate(workers)}})
        operations, time_before = await database_operations(runtime), await database_time(runtime)
        busy.start()
        events = [(f"/api/merchant/v1/orders/{tag}{n:05d}/events", {"event_id": "paid", "type": "paid",
                                                                     "at": T0.isoformat()}) for n in range(count)]
        start = time.perf_counter()
        statuses = await post_all(http, events[PROBES:], args.clients)
        accepted = time.perf_counter() - start
        latencies = await probe(http, events[:PROBES], lambda: queue_idle(runtime))
        while not await queue_idle(runtime):
            await asyncio.sleep(0.05)
        finished = time.perf_counter() - start
        shares = busy.shares()
        operations = {kind: total - operations[kind] for kind, total in (await database_operations(runtime)).items()}
        time_after = await database_time(runtime)
        count -= PROBES - len(latencies)  # probes left unsent once the backlog had drained
        after = [rss_mib(worker.pid) for worker in workers]
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            await asyncio.to_thread(worker.wait, 30)
    paid = await runtime.db["orders"].count_documents({"_id": {"$regex": f"^{tag}"}, "status": "paid"})
    report = await runtime.ledger.verify()
    rate = count / finished
    print(f"  {processes} worker process{'es' if processes > 1 else ''}: drained in {finished:.1f} s, {rate:.1f} paid "
          f"orders/s, ratio to raw inserts {rate / raw_rate:.3f}; API took them in {accepted:.1f} s "
          f"(HTTP {dict(Counter(statuses))})")
    print(f"    CPU busy while it drained, in % of one core: {shares}; the database's operations per event "
          f"(all clients): " + ", ".join(f"{kind} {operations[kind] / count:.2f}" for kind in OPERATION_KINDS))
    print(f"    the database's time per paid order, by operation and collection: "
          f"{time_per_order(time_before, time_after, count)}")
    print(f"    POST .../events while the backlog drained ({len(latencies)} single requests): p50 "
          f"{percentile(latencies, 0.5) * 1000:.1f} ms, p99 {percentile(latencies, 0.99) * 1000:.1f} ms")
    print("    worker RSS before/after: " + ", ".join(f"{b:.0f}/{a:.0f} MiB" for b, a in zip(before, after))
          + f"; check: {paid}/{count} paid, ledger verify {'clean' if report.clean else 'NOT BALANCED'}")
    return paid == count and report.clean


async def checkout_throughput(runtime: Any, http: httpx.AsyncClient, args: argparse.Namespace, sandbox: Any,
                              merchant_rate: float) -> bool:
    """Mini-program orders per second end to end: each buyer (3 deep, under `--chains` chains) checks out one
    unit (`POST /api/v1/orders`: priced, stock reserved, order created, prepay made at the sandbox's WeChat
    Pay), pays at the sandbox, whose signed, encrypted callback comes back over HTTP, and the worker applies
    the payment: commissions frozen, notifications sent. Timed from the first checkout to the queue empty,
    beside the merchant API's paid orders of phase 2."""
    count = args.checkouts
    pay = sandbox.state.pay
    pay.deliver_to = str(http.base_url)
    product = await http.post("/api/merchant/v1/products", json={"title": "龙井茶", "skus": [
        {"sku": "bench-tea", "title": "250g", "price_fen": 10_000, "stock": count}]})
    assert product.status_code == 201, product.text
    chains = [members_chain(3, True) for _ in range(args.chains)]
    for chain in chains:
        chain[-1]["miniapp_openid"] = f"mini_{chain[-1]['_id']}"
        await runtime.db["members"].insert_many(chain)
    tokens = [await runtime.sessions.issue(chain[-1]["_id"]) for chain in chains]
    done = asyncio.Event()
    workers = asyncio.create_task(workers_until(runtime, args.workers, done))
    source = iter(range(count))
    statuses: Counter[int] = Counter()

    async def buyer() -> None:
        for number in source:
            answer = await http.post("/api/v1/orders", headers={"Authorization": f"Bearer {tokens[number % len(tokens)]}"},
                                     json={"items": [{"sku": "bench-tea", "qty": 1}], "idempotency_key": f"b{number}"})
            statuses[answer.status_code] += 1
            if answer.status_code == 201:
                prepay_id = answer.json()["request_payment"]["package"].removeprefix("prepay_id=")
                await pay.pay(pay.prepays[prepay_id])

    start = time.perf_counter()
    await asyncio.gather(*(buyer() for _ in range(args.clients)))
    while not await queue_idle(runtime):
        await asyncio.sleep(0.05)
    seconds = time.perf_counter() - start
    done.set()
    await workers
    rate = count / seconds
    paid = await runtime.db["orders"].count_documents({"checkout.source": "miniapp", "status": "paid"})
    posted = await runtime.db["orders"].count_documents({"checkout.source": "miniapp", "commissions_posted": True})
    print(f"  {'checkouts, API -> pay -> callback -> worker':44}{rate:>9.1f} orders/s ({seconds:.2f} s for {count})")
    print(f"  ratio checkouts / merchant-API paid orders = {rate / merchant_rate:.3f}")
    print(f"  check: {paid}/{count} paid, {posted}/{count} with commissions posted, HTTP {dict(statuses)}")
    return paid == count == posted


async def commands_per_order(runtime: Any, http: httpx.AsyncClient, args: argparse.Namespace,
                             listener: CommandCounter, prefix: str, buyers: tuple[tuple[str, list[dict]], ...]) -> bool:
    """Print the commands per paid order for each (label, chain) of `buyers`; whether they are all the same, with
    three commissions per order."""
    db = runtime.db
    rows, commission_counts = {}, []
    for label, members in buyers:
        before_mongo, before_redis = Counter(listener.commands), Counter(CountingRedis.counts)
        before_micros, seconds = Counter(listener.micros), 0.0
        for number in range(args.depth_orders):
            # From the request to an idle queue: not the consumer's last wait for more work as it stops.
            seconds += (await through_the_worker(runtime, http, [("/api/merchant/v1/orders", order_body(
                f"D{prefix}{len(members)}-{number}", members[-1], True))], args, periodic=False))[1]
        mongo = {key: count / args.depth_orders for key, count in (Counter(listener.commands) - before_mongo).items()}
        redis_counts = Counter(CountingRedis.counts) - before_redis
        # The queue polls while idle (XREADGROUP/XAUTOCLAIM/EVALSHA per poll), and its heartbeats, its
        # acknowledgements and this bench's checks for an empty queue share pipelines (PIPELINE, TIME): counted
        # apart, they depend on timing.
        polling = {"XREADGROUP", "XAUTOCLAIM", "EVALSHA", "XPENDING", "XLEN", "ZCARD", "PIPELINE", "TIME"}
        redis_work = {key: count / args.depth_orders for key, count in redis_counts.items() if key not in polling}
        pipelines = redis_counts["PIPELINE"] / args.depth_orders
        rows[label] = (mongo, redis_work)
        micros = Counter(listener.micros) - before_micros
        elapsed_ms = seconds * 1000 / args.depth_orders
        db_ms = sum(micros.values()) / 1000 / args.depth_orders
        commissions = await db["commissions"].count_documents({"order_no": f"D{prefix}{len(members)}-0"})
        commission_counts.append(commissions)
        print(f"  {label:16} Mongo {sum(mongo.values()):5.1f} commands, Redis {sum(redis_work.values()):4.1f} "
              f"(and {pipelines:.1f} pipelines, queue polling aside), {commissions} commissions per order; "
              f"{elapsed_ms:.0f} ms per order, "
              f"{db_ms:.0f} ms of it waiting on Mongo")
        slowest = sorted(micros.items(), key=lambda kv: -kv[1])[:4]
        print("    slowest: " + ", ".join(f"{name} {coll} {us / 1000 / args.depth_orders:.1f} ms"
                                         for (name, coll), us in slowest))
    first, *others = rows.values()
    same = all(row == first for row in others)
    print(f"  the same at {' and '.join(rows)}: {'yes' if same else 'NO'}")
    print("  by command and collection (per order):")
    for (name, collection), count in sorted(first[0].items()):
        print(f"    {name:18} {collection:24} {count:g}")
    return same and all(count == 3 for count in commission_counts)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.orders", description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=300, help="paid orders for the throughput (default 300)")
    parser.add_argument("--depth-orders", type=int, default=10, help="orders per depth for the command count")
    parser.add_argument("--burst", type=int, default=10_000, help="paid events in the burst (default 10,000)")
    parser.add_argument("--workers", type=int, default=1, help="queue consumers in this process (default 1: on "
                                                                "one SecantusDB more add no throughput)")
    parser.add_argument("--checkouts", type=int, default=200, help="mini-program checkouts paid end to end, beside "
                                                                   "the merchant API's orders (default 200; 0: none)")
    parser.add_argument("--process-burst", type=int, default=None,
                        help="paid events drained by 1, then 2 worker processes (default: --burst; 0: skip)")
    parser.add_argument("--wechat-delay", type=float, default=0.0,
                        help="phase 5 only: promoters given openids and each message send answered after this many "
                             "seconds (default 0: promoters unreachable, sends answered at once)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients (default 8)")
    parser.add_argument("--chains", type=int, default=50, help="distinct promoter chains of the buyers (default 50)")
    parser.add_argument("--mongodb-uri", help="a MongoDB to use instead of an embedded SecantusDB (a scratch database "
                                              "is created in it and dropped)")
    args = parser.parse_args()
    if args.process_burst is None:
        args.process_burst = args.burst
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
