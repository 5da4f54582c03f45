"""Scan-and-bind throughput through RelationService.bind (python -m bench.binding).

Measured in one run, on one embedded SecantusDB (":memory:", started here as a
child process) and the Redis at 127.0.0.1:6379 under a key prefix of its own
(`bench:<uuid>:`, whose keys, and only those, are deleted at the end):

    raw:  the conditional write a bind is built around, alone:
          update_one({_id, upline_id: None}, {$set: {upline_id, ancestor_ids, bound_at, bind_source}})
          on a fresh member. The issue names find_one_and_update as the
          baseline; on SecantusDB find_one_and_update scans the whole
          collection, so by the project's rule the same conditional
          update_one stands in for it.
    bind: RelationService.bind(member, promoter, OA_SCAN) in first-bind mode,
          a fresh member under one of the promoters of a small existing tree
          (root <- 10 promoters <- 30 promoters, plus a 30-deep chain). The
          member's document is passed as the push handler passes the one it
          has just upserted; the promoter's is read by the service (then kept
          for seconds, as every server process does).
    floor: what the database itself asks of any bind that cannot make a
          cycle: one transaction of the two guarded updates a bind must commit
          together (the member's relation, the upline's counters), nothing
          else - no read, no log, no decision. floor/raw is about the best
          ratio a transactional bind can reach on this database.

All three run with the same concurrency (distinct members, never the same
member twice), on the same `members` collection of the same size, in rounds,
every other round backwards, so that none gets a warmer or fuller database.
Target: bind/s >= 0.5 x raw/s.

Then the same comparison with the chain-move mode (链动2+1) on: every bind is
also a join, claiming the inviter's next position, passing the second
referral up to the nearest boss (one `$in` read of the owners' roles) and
upgrading agents (their grade record and notice in the same transaction).
The tree's members stand as if they had joined in that mode (the root a
boss, everyone else an agent whose owner chain is its ancestors). Target:
its bind/raw ratio within 20% of the level mode's. What a bind leaves to the worker (its log
entry, the counters above the upline, the notice) is not in the bind phases:
the worker's follow-up of all the binds is timed at the end.

Then the cost of one bind in commands, counted with a pymongo
CommandListener on the service's own AsyncMongoClient and with a counting
wrapper around the redis.asyncio client's execute_command (and pipelines): sequential binds at depth 1 (under the
root), 2 (under a promoter) and 31 (under the leaf of a 30-deep chain), and
the average under concurrency, where retried transactions add commands.

The service is the one bot.runtime.open_runtime builds (so it is wired as the
server wires it); its Mongo client is given the listener (open_mongo's own
options plus event_listeners) and its Redis client counts what it sends.

With --risk, the level mode's comparison is run again with the risk checks on (`services.risk`): every
bind comes from an address of its own, as a mini-program scan or a share link does, and is counted towards
its promoter's bind velocity before it is decided. Printed: the bind/raw ratio with and without them (target:
within 20%), and the commands the checks add per bind.

Flags: --concurrency, --seconds (per phase), --rounds, --depth-binds, --risk.
Exit status 0 only when the ratio meets the target and the counters check out.
Bounded: every phase stops after --seconds (or when its pool of fresh
members runs out); the whole run is cut off after --max-seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable

from pymongo import UpdateOne, monitoring

import stores.mongo
from bot.runtime import open_runtime
from distribution.binding import BindSource
from distribution.chain_move import ChainMoveSettings
from services.risk import Origin
from bench.harness import run_bounded
from settings import load_settings
from stores.embedded import secantusdb_uri, start_secantusdb
from stores.members import new_member_fields

REDIS_URL = "redis://127.0.0.1:6379/0"
TARGET_RATIO = 0.5
CHAIN_MOVE_TARGET = 0.8  # its bind/raw ratio over the level mode's
RISK_TARGET = 0.8  # with the risk checks on, the bind/raw ratio over the level mode's without them
CHAIN_DEPTH = 30
TOP_PROMOTERS = 10  # directly under the root
SUB_PROMOTERS = 30  # under the top promoters
T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


# --------------------------------------------------------------------------- counting clients


class CommandCounter(monitoring.CommandListener):
    """Every command the client sends, by (command, collection); update/insert/delete statements too."""

    def __init__(self) -> None:
        self.commands: Counter[tuple[str, str]] = Counter()
        self.statements: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        name = event.command_name
        target = event.command.get(name)
        self.commands[(name, target if isinstance(target, str) else "")] += 1
        for key in ("updates", "documents", "deletes"):
            if key in event.command:
                self.statements[f"{name} statements"] += len(event.command[key])

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self.failures[event.command_name] += 1

    def snapshot(self) -> "Counts":
        return Counts(Counter(self.commands), Counter(self.statements), Counter(self.failures))


def count_redis_commands(client: Any) -> Counter:
    """Count every command `client` (a redis.asyncio.Redis) sends from now on, pipelined ones too."""
    counts: Counter[str] = Counter()
    send = client.execute_command
    make_pipeline = client.pipeline

    def name_of(args: tuple) -> str:
        return (args[0].decode() if isinstance(args[0], bytes) else str(args[0])).upper()

    async def execute_command(*args: Any, **options: Any) -> Any:
        counts[name_of(args)] += 1
        return await send(*args, **options)

    def pipeline(*args: Any, **kwargs: Any) -> Any:
        pipe = make_pipeline(*args, **kwargs)
        run = pipe.execute

        async def execute(*eargs: Any, **ekwargs: Any) -> Any:
            for command_args, _options in pipe.command_stack:
                counts[f"{name_of(command_args)} (pipelined)"] += 1
            return await run(*eargs, **ekwargs)

        pipe.execute = execute
        return pipe

    client.execute_command = execute_command  # instance attributes: every holder of the client is counted
    client.pipeline = pipeline
    return counts


@dataclass
class Counts:
    commands: Counter = field(default_factory=Counter)
    statements: Counter = field(default_factory=Counter)
    failed: Counter = field(default_factory=Counter)
    redis: Counter = field(default_factory=Counter)

    def __sub__(self, other: "Counts") -> "Counts":
        return Counts(self.commands - other.commands, self.statements - other.statements,
                      self.failed - other.failed, self.redis - other.redis)

    def __add__(self, other: "Counts") -> "Counts":
        return Counts(self.commands + other.commands, self.statements + other.statements,
                      self.failed + other.failed, self.redis + other.redis)


@dataclass
class Bench:
    listener: CommandCounter
    redis_counts: Counter
    relations: Any  # the runtime's RelationService
    members_collection: Any

    def counts(self) -> Counts:
        snap = self.listener.snapshot()
        snap.redis = Counter(self.redis_counts)
        return snap


# --------------------------------------------------------------------------- data


def member_doc(created_at: datetime, **fields: Any) -> dict:
    return {**new_member_fields(created_at), **fields}


def small_tree() -> tuple[dict, list[dict], list[dict], list[dict]]:
    """root <- 10 promoters <- 30 promoters, and root <- c1 <- ... <- c30; counters consistent."""
    root = member_doc(T0 - timedelta(days=30), nickname="root")
    docs, parents = [root], {}
    chain: list[dict] = []
    for level in range(CHAIN_DEPTH):
        upline = chain[-1] if chain else root
        chain.append(member_doc(T0 - timedelta(days=29), nickname=f"c{level + 1}"))
        parents[chain[-1]["_id"]] = upline
    top = [member_doc(T0 - timedelta(days=20), nickname=f"p{i}") for i in range(TOP_PROMOTERS)]
    sub = [member_doc(T0 - timedelta(days=10), nickname=f"q{i}") for i in range(SUB_PROMOTERS)]
    for promoter in top:
        parents[promoter["_id"]] = root
    for i, promoter in enumerate(sub):
        parents[promoter["_id"]] = top[i % TOP_PROMOTERS]
    by_id = {root["_id"]: root}
    root["role"] = "boss"
    for doc in chain + top + sub:  # parents before children
        upline = parents[doc["_id"]]
        ancestor_ids = [upline["_id"], *upline["ancestor_ids"]]
        # As if joined in the chain-move mode with no pass-up: owned by the inviter, owners its ancestors.
        doc.update(upline_id=upline["_id"], ancestor_ids=ancestor_ids,
                   bound_at=doc["created_at"] + timedelta(hours=1), bind_source="oa_scan",
                   role="agent", owner_ids=ancestor_ids, team_owner_id=upline["_id"])
        by_id[doc["_id"]] = doc
        upline["direct_count"] += 1
        upline["referral_count"] = upline.get("referral_count", 0) + 1
        for ancestor_id in doc["ancestor_ids"]:
            by_id[ancestor_id]["team_count"] += 1
            by_id[ancestor_id]["team_size"] = by_id[ancestor_id].get("team_size", 0) + 1
    docs += chain + top + sub
    return root, chain, top + sub, docs


# --------------------------------------------------------------------------- phases


async def run_phase(op: Callable[[Any], Awaitable[Any]], items: Iterable[Any], concurrency: int,
                    seconds: float) -> tuple[int, float, list[Any]]:
    """`concurrency` workers take items until the time is up or the items run out."""
    source = iter(items)
    results: list[Any] = []
    start = time.perf_counter()
    deadline = start + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            item = next(source, None)
            if item is None:
                return
            results.append(await op(item))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(results), time.perf_counter() - start, results


def take(pool: list, n: int) -> list:
    taken = pool[:n]
    del pool[:n]
    return taken


def per_bind(delta: Counts, binds: int) -> dict[str, float]:
    """Mongo commands per bind by name (settings-cache reads kept apart), Redis commands, statements."""
    out: dict[str, float] = {}
    for (name, collection), count in sorted(delta.commands.items()):
        label = f"{name} {collection}".strip()
        out[label] = count / binds
    return out


def describe(per: dict[str, float]) -> str:
    return ", ".join(f"{label} {value:g}" for label, value in per.items()) or "none"


def mongo_total(delta: Counts, binds: int, *, settings_reads: bool) -> float:
    total = sum(count for (name, coll), count in delta.commands.items()
                if settings_reads or coll != "merchant_settings")
    return total / binds


# --------------------------------------------------------------------------- main


async def run(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="bench-binding-"))
    prefix = f"bench:{uuid.uuid4().hex[:12]}:"
    server = start_secantusdb(":memory:", workdir / "secantusdb.log")
    try:
        settings = load_settings({
            "DEMO": "1",
            "MONGODB_URI": secantusdb_uri(server.port),
            "MONGODB_DB": "bench_binding",
            "REDIS_URL": REDIS_URL,
            "REDIS_PREFIX": prefix,
            "VAR_DIR": str(workdir / "var"),
            "WECHAT_API_BASE": "http://127.0.0.1:9",  # nothing is sent: no worker sends the notices
        }, env_file=None)
        listener = CommandCounter()
        async with AsyncExitStack() as stack:
            # The runtime exactly as the server builds it; only its Mongo client gets the listener
            # (stores.mongo.open_mongo's own options, plus event_listeners) ...
            original = stores.mongo.AsyncMongoClient
            stores.mongo.AsyncMongoClient = functools.partial(original, event_listeners=[listener])
            try:
                runtime = await stack.enter_async_context(open_runtime(settings))
            finally:
                stores.mongo.AsyncMongoClient = original
            stack.push_async_callback(delete_keys, runtime.redis, prefix)
            # ... and its Redis client counts what it sends.
            redis_counts = count_redis_commands(runtime.redis)
            bench = Bench(listener, redis_counts, runtime.relations, runtime.db["members"])
            return await measure(bench, runtime.db, args, prefix, server.port)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        print("cleanup: SecantusDB stopped, its directory removed")


async def delete_keys(redis: Any, prefix: str) -> None:
    keys = [key async for key in redis.scan_iter(match=f"{prefix}*", count=1000)]
    deleted = await redis.delete(*keys) if keys else 0
    left = len([key async for key in redis.scan_iter(match=f"{prefix}*", count=1000)])
    print(f"\ncleanup: deleted {deleted} Redis key(s) under {prefix} ({left} left)")


async def measure(bench: Bench, db: Any, args: argparse.Namespace, prefix: str, port: int) -> int:
    c = args.concurrency
    root, chain, promoters, tree_docs = small_tree()
    leaf = chain[-1]
    # Fresh, unbound members: a pool per kind of phase, generous for the phase length.
    pools = {
        "raw": [member_doc(T0) for _ in range(args.raw_pool)],
        "bind": [member_doc(T0) for _ in range(args.bind_pool)],
        "floor": [member_doc(T0) for _ in range(args.raw_pool // 2)],
        "raw1": [member_doc(T0) for _ in range(args.raw_pool // 2)],
        "floor1": [member_doc(T0) for _ in range(args.raw_pool // 4)],
        "bind1": [member_doc(T0) for _ in range(args.bind_pool // 2)],
        "depth": [member_doc(T0) for _ in range(6 * (args.depth_binds + 1))],
        "chain_raw": [member_doc(T0) for _ in range(args.raw_pool)],
        "chain_floor": [member_doc(T0) for _ in range(args.raw_pool // 2)],
        "chain_bind": [member_doc(T0) for _ in range(args.bind_pool)],
        **({"risk_raw": [member_doc(T0) for _ in range(args.raw_pool)],
            "risk_floor": [member_doc(T0) for _ in range(args.raw_pool // 2)],
            "risk_bind": [member_doc(T0) for _ in range(args.bind_pool)]} if args.risk else {}),
    }
    started = time.perf_counter()
    all_docs = tree_docs + [doc for pool in pools.values() for doc in pool]
    for i in range(0, len(all_docs), 2_000):  # chunks the database takes well within the client's time limit
        await bench.members_collection.insert_many(all_docs[i:i + 2_000], ordered=False)
    size = await bench.members_collection.count_documents({})
    print(f"Scan-and-bind throughput, python -m bench.binding: SecantusDB (:memory:, 127.0.0.1:{port}) "
          f"+ Redis {REDIS_URL} (keys under {prefix})")
    print(f"  members collection: {size:,} documents throughout (tree of {len(tree_docs)}: root, "
          f"{TOP_PROMOTERS}+{SUB_PROMOTERS} promoters, a {CHAIN_DEPTH}-deep chain; the rest fresh), "
          f"loaded in {time.perf_counter() - started:.1f} s")
    print("  bind mode: first_bind (the default settings); every bind is a fresh member under a promoter")
    print("  baseline: the issue names find_one_and_update; on SecantusDB that scans the whole collection,")
    print("            so (project rule) the baseline is the same conditional update_one instead:")
    print("            update_one({_id, upline_id: None}, {$set: {upline_id, ancestor_ids, bound_at, bind_source}})")

    now = T0 + timedelta(minutes=1)

    def relation_update(member: dict) -> tuple[dict, dict, dict]:
        """(promoter, filter, update) of the conditional write a bind is built around."""
        promoter = promoters[int(member["_id"][-6:], 16) % len(promoters)]
        return promoter, {"_id": member["_id"], "upline_id": None}, {"$set": {
            "upline_id": promoter["_id"], "ancestor_ids": [promoter["_id"], *promoter["ancestor_ids"]],
            "bound_at": now, "bind_source": "oa_scan"}}

    async def raw(member: dict) -> bool:
        _, filter, update = relation_update(member)
        return (await bench.members_collection.update_one(filter, update)).modified_count == 1

    async def floor(member: dict) -> bool:
        promoter, filter, update = relation_update(member)

        async def both(session: Any) -> bool:
            result = await bench.members_collection.bulk_write([
                UpdateOne(filter, update),
                UpdateOne({"_id": promoter["_id"], "frozen": {"$ne": True}},
                          {"$inc": {"direct_count": 1, "team_count": 1}}),
            ], session=session)
            return result.modified_count == 2

        async with bench.relations.client.start_session() as session:
            return await session.with_transaction(both)

    bound_ids: list[str] = []
    latencies: list[float] = []  # of the binds in the phase being measured
    with_origin = False  # the risk phases: each bind comes from an address of its own, and is checked

    async def bind(pair: tuple[dict, dict]) -> bool:
        member, upline = pair
        start = time.perf_counter()
        origin = Origin(ip=f"10.{int(member['_id'][-6:], 16) % 65536 // 256}.{int(member['_id'][-6:], 16) % 256}.1") \
            if with_origin else None
        outcome = await bench.relations.bind(member, upline["_id"], BindSource.OA_SCAN, now, origin=origin)
        latencies.append(time.perf_counter() - start)
        if outcome.bound:
            bound_ids.append(member["_id"])
        return outcome.bound

    def bind_items(pool: list[dict]) -> Iterable[tuple[dict, dict]]:
        return ((member, promoters[i % len(promoters)]) for i, member in enumerate(pool))

    # Warm every path (connections, settings cache, WiredTiger pages) outside the measurement.
    await run_phase(raw, take(pools["raw"], 2 * c), c, 30)
    await run_phase(floor, take(pools["floor"], 2 * c), c, 30)
    await run_phase(bind, bind_items(take(pools["bind"], 2 * c)), c, 30)

    async def compare(concurrency: int, raw_pool: list[dict], floor_pool: list[dict], bind_pool: list[dict],
                      seconds: float) -> dict:
        """Alternating rounds of raw updates, floor transactions and binds at one concurrency; totals
        and the binds' commands."""
        totals = {"raw": [0, 0.0, 0], "floor": [0, 0.0, 0], "bind": [0, 0.0, 0], "delta": Counts()}
        # Every round gets the same share of each pool.
        raw_share, floor_share, bind_share = (len(pool) // args.rounds for pool in (raw_pool, floor_pool, bind_pool))
        phases = [("raw", raw, lambda: take(raw_pool, raw_share)), ("floor", floor, lambda: take(floor_pool, floor_share)),
                  ("bind", bind, lambda: bind_items(take(bind_pool, bind_share)))]
        for round_number in range(args.rounds):  # totals: ops, seconds, successes
            # Every other round runs backwards, so that no kind always runs on a database a phase older.
            for kind, op, items in phases if round_number % 2 == 0 else reversed(phases):
                before = bench.counts()
                n, secs, results = await run_phase(op, items(), concurrency, seconds)
                if kind == "bind":
                    totals["delta"] = totals["delta"] + (bench.counts() - before)
                totals[kind] = [totals[kind][0] + n, totals[kind][1] + secs, totals[kind][2] + sum(results)]
        return totals

    def show(totals: dict, target: bool, seconds: float) -> float:
        for kind in ("raw", "floor", "bind"):
            if totals[kind][1] < 0.95 * seconds * args.rounds:
                print(f"  ({kind}: a round ran out of fresh members before its time; the rate is still ops/s -"
                      f" raise --{'raw' if kind == 'floor' else kind}-pool)")
        rates = {kind: totals[kind][0] / totals[kind][1] for kind in ("raw", "floor", "bind")}
        ratio = rates["bind"] / rates["raw"]
        print(f"  {'':38}{'ops':>7}{'seconds':>9}{'ops/s':>9}")
        for kind, label, done in (("raw", "raw conditional update_one", "matched"),
                                  ("floor", "floor: transaction of the 2 updates", "committed"),
                                  ("bind", "RelationService.bind", "bound")):
            print(f"  {label:38}{totals[kind][0]:>7}{totals[kind][1]:>9.2f}{rates[kind]:>9.1f}"
                  f"   ({totals[kind][2]} {done})")
        verdict = f"   (target >= {TARGET_RATIO}: {'met' if ratio >= TARGET_RATIO else 'NOT met'})" if target else ""
        print(f"  ratio bind/raw = {ratio:.3f}{verdict}")
        print(f"  ratio floor/raw = {rates['floor'] / rates['raw']:.3f} (the best a transactional bind can do here); "
              f"bind/floor = {rates['bind'] / rates['floor']:.3f}")
        return ratio

    async def use_chain_move(enabled: bool) -> None:
        await bench.relations.merchant_settings.put(ChainMoveSettings(enabled=enabled, acknowledge_legal_risk=True))

    latencies.clear()
    main_run = await compare(c, pools["raw"], pools["floor"], pools["bind"], args.seconds)
    main_latencies = sorted(latencies)
    print(f"\nThroughput, concurrency {c} (distinct members), "
          f"{args.rounds} rounds of {args.seconds:g} s per phase:")
    ratio = show(main_run, target=True, seconds=args.seconds)
    # The same two, one at a time: what a bind costs without contention.
    seq_run = await compare(1, pools["raw1"], pools["floor1"], pools["bind1"], args.seconds / 2)
    print(f"\n  for comparison, concurrency 1 (no contention), "
          f"{args.rounds} rounds of {args.seconds / 2:g} s per phase:")
    show(seq_run, target=False, seconds=args.seconds / 2)

    await use_chain_move(True)
    await run_phase(bind, bind_items(take(pools["chain_bind"], 2 * c)), c, 30)
    chain_run = await compare(c, pools["chain_raw"], pools["chain_floor"], pools["chain_bind"], args.seconds)
    await use_chain_move(False)
    print(f"\nThe chain-move mode (链动2+1: positions, the pass-up of the second referral, upgrades), "
          f"concurrency {c}, {args.rounds} rounds of {args.seconds:g} s per phase:")
    chain_ratio = show(chain_run, target=False, seconds=args.seconds)
    chain_delta, chain_bound = chain_run["delta"], chain_run["bind"][2]
    print(f"  Mongo commands per bind (all attempts, settings reads excluded): "
          f"{mongo_total(chain_delta, chain_bound, settings_reads=False):.2f}  "
          f"[{describe(per_bind(chain_delta, chain_bound))}]")
    chain_met = chain_ratio >= CHAIN_MOVE_TARGET * ratio
    print(f"  ratio bind/raw: level mode {ratio:.3f}, chain-move mode {chain_ratio:.3f}: chain-move/level = "
          f"{chain_ratio / ratio:.3f}   (target >= {CHAIN_MOVE_TARGET}: {'met' if chain_met else 'NOT met'})")

    risk_met = True
    if args.risk:
        with_origin = True
        await run_phase(bind, bind_items(take(pools["risk_bind"], 2 * c)), c, 30)
        risk_run = await compare(c, pools["risk_raw"], pools["risk_floor"], pools["risk_bind"], args.seconds)
        with_origin = False
        print(f"\nWith the risk checks on (bind velocity per promoter and address), concurrency {c}, "
              f"{args.rounds} rounds of {args.seconds:g} s per phase:")
        risk_ratio = show(risk_run, target=False, seconds=args.seconds)
        risk_met = risk_ratio >= RISK_TARGET * ratio
        print(f"  ratio bind/raw: without risk checks {ratio:.3f}, with {risk_ratio:.3f}: with/without = "
              f"{risk_ratio / ratio:.3f}   (target >= {RISK_TARGET}: {'met' if risk_met else 'NOT met'})")
        plain, checked = main_run["delta"], risk_run["delta"]
        plain_bound, checked_bound = main_run["bind"][2], risk_run["bind"][2]
        redis_added = (sum(checked.redis.values()) / max(checked_bound, 1)
                       - sum(plain.redis.values()) / max(plain_bound, 1))
        mongo_added = (mongo_total(checked, checked_bound, settings_reads=False)
                       - mongo_total(plain, plain_bound, settings_reads=False))
        print(f"  added per bind: Redis commands {redis_added:+.2f} (one MULTI/EXEC pipeline: one round trip), "
              f"Mongo commands {mongo_added:+.2f}  [Redis with checks: "
              f"{describe({k: v / max(checked_bound, 1) for k, v in checked.redis.items()})}]")

    bind_delta, bound = main_run["delta"], main_run["bind"][2]
    aborted = bind_delta.commands[("abortTransaction", "")]
    conflicts = bind_delta.failed.get("update", 0)
    print(f"\n  under concurrency {c}: {bind_delta.commands[('commitTransaction', '')]} commits, {aborted} aborted "
          f"transactions ({aborted / max(bound, 1):.2f} per bind), {conflicts} update commands failed with")
    print("  WriteConflict (with_transaction aborts, backs off 5-500 ms and runs the whole callback again)")
    print(f"  Mongo commands per bind under concurrency {c} (all attempts, settings reads excluded): "
          f"{mongo_total(bind_delta, bound, settings_reads=False):.2f}")
    print(f"    [{describe(per_bind(bind_delta, bound))}]")
    print(f"  Redis commands per bind under concurrency {c}: "
          f"{sum(bind_delta.redis.values()) / max(bound, 1):.2f}  "
          f"[{describe({k: v / bound for k, v in bind_delta.redis.items()})}]")
    if main_latencies:
        def pct(p: float) -> float:
            return main_latencies[min(len(main_latencies) - 1, int(p * len(main_latencies)))] * 1000
        print(f"  bind latency under concurrency {c}: p50 {pct(0.5):.0f} ms, p90 {pct(0.9):.0f} ms, "
              f"max {main_latencies[-1] * 1000:.0f} ms")

    # ---- commands per bind by depth, sequential (no retries), counted exactly
    print(f"\nCommands per bind by depth, {args.depth_binds} sequential binds each "
          "(Mongo: CommandStartedEvents on the")
    print("service's client, every command name counted -- pymongo publishes no events for handshakes or")
    print("heartbeats, and endSession is sent only when the client closes, after the count; reads of")
    print("merchant_settings, a 5 s cache refresh, are shown apart. Redis: every command the client sent):")
    print(f"  {'mode':<6}{'new member at depth':<28}{'Mongo cmds':>11}{'write stmts':>12}{'Redis cmds':>11}{'median ms':>11}"
          "   commands")
    depth_pool = pools["depth"]
    uplines = [("1 (under the root)", root), ("2 (under a promoter)", promoters[0]),
               (f"{CHAIN_DEPTH + 1} (under the chain's leaf)", leaf)]

    async def depth_rows(mode: str) -> set[tuple[float, float]]:
        rows = set()
        for label, upline in uplines:
            # Each row counts the usual case, a scan of a code whose promoter this process read in the last
            # seconds: one unmeasured bind first reads the upline (a miss adds that one find).
            warm = take(depth_pool, 1)[0]
            if (await bench.relations.bind(warm, upline["_id"], BindSource.OA_SCAN, now)).bound:
                bound_ids.append(warm["_id"])
            before = bench.counts()
            latencies = []
            ok = 0
            for member in take(depth_pool, args.depth_binds):
                start = time.perf_counter()
                outcome = await bench.relations.bind(member, upline["_id"], BindSource.OA_SCAN, now)
                latencies.append(time.perf_counter() - start)
                ok += outcome.bound
                if outcome.bound:
                    bound_ids.append(member["_id"])
            delta = bench.counts() - before
            n = args.depth_binds
            mongo_cmds = mongo_total(delta, n, settings_reads=False)
            stmts = sum(delta.statements.values()) / n
            redis_cmds = sum(delta.redis.values()) / n
            settings_reads = sum(v for (name, coll), v in delta.commands.items() if coll == "merchant_settings")
            per = {k: v for k, v in per_bind(delta, n).items() if "merchant_settings" not in k}
            extra = f"; + {settings_reads} settings read(s) in all" if settings_reads else ""
            rows.add((mongo_cmds, redis_cmds))
            print(f"  {mode:<6}{label:<28}{mongo_cmds:>11g}{stmts:>12g}{redis_cmds:>11g}"
                  f"{statistics.median(latencies) * 1000:>11.1f}   {describe(per)}; Redis "
                  f"{describe({k: v / n for k, v in delta.redis.items()})}{extra}  ({ok}/{n} bound)")
        return rows

    level_rows = await depth_rows("level")
    await use_chain_move(True)
    chain_rows = await depth_rows("chain")
    await use_chain_move(False)
    print("  (write stmts: the statements inside those commands - the member's guarded update, which also")
    print("   carries its log entry and the counters above the upline for the worker, and the upline's")
    print("   counters. Round trips and statements stay constant; the time grows with depth because each")
    print("   ancestor is an entry of the member in three indexes.)")
    verdict = "yes" if len(level_rows) == 1 and len(chain_rows) == 1 else "NO"
    print(f"  Mongo and Redis commands per bind the same at depth 1, 2 and {CHAIN_DEPTH + 1}, in each mode: {verdict}"
          " (in the chain-move mode a join passed up adds the one read of its owners' roles, the positions")
    print("   passed up being the same at every depth)")

    # ---- the counters and the log must agree with what was bound, once the worker has added the
    # counters above each upline (its once-a-second task, run here by hand)
    started = time.perf_counter()
    followed_up = await bench.relations.apply_follow_ups()
    took = time.perf_counter() - started
    print(f"\nThe worker's follow-up of the binds (log entries, counters above the upline, notices), batches of "
          f"500 binds per transaction: {followed_up} binds in {took:.2f} s, "
          f"{took / max(followed_up, 1) * 1000:.2f} ms per bind")
    root_now = await bench.members_collection.find_one({"_id": root["_id"]})
    expected_team = root["team_count"] + len(bound_ids)
    bound_logged = await db["bind_log"].count_documents({"result": "bound"})
    with_upline = await bench.members_collection.count_documents(
        {"_id": {"$in": bound_ids}, "upline_id": {"$ne": None}})
    consistent = root_now["team_count"] == expected_team and bound_logged == len(bound_ids) == with_upline
    print(f"\nCheck: {len(bound_ids)} binds in all; "
          f"root team_count {root_now['team_count']} (expected {expected_team}); "
          f"bind_log 'bound' entries {bound_logged}; bound members with an upline {with_upline}: "
          f"{'consistent' if consistent else 'INCONSISTENT'}")
    return 0 if consistent and ratio >= TARGET_RATIO and chain_met and risk_met else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each measured phase")
    parser.add_argument("--rounds", type=int, default=4, help="rounds of raw, floor and bind phases (every other one backwards)")
    parser.add_argument("--depth-binds", type=int, default=20, help="sequential binds per depth when counting")
    parser.add_argument("--risk", action="store_true", help="compare the binds with the risk checks on, too")
    parser.add_argument("--raw-pool", type=int, default=5000, help="fresh members for the raw phases")
    parser.add_argument("--bind-pool", type=int, default=2000, help="fresh members for the bind phases")
    parser.add_argument("--max-seconds", type=float, default=240.0, help="hard stop for the whole run")
    args = parser.parse_args()
    return run_bounded(run(args), args.max_seconds)


if __name__ == "__main__":
    sys.exit(main())
