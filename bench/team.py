"""Team and chain reads against tree size (python -m bench.team [--sizes 10000,1000000]).

For each size a synthetic tree is bulk-loaded into its own embedded
SecantusDB (a storage directory under /tmp, removed afterwards): documents
shaped like `stores.members.new_member_fields(...)` with `upline_id`,
`ancestor_ids` (nearest first), `bound_at` and `direct_count`/`team_count`
consistent with the tree, inserted with `insert_many` in batches, then the
project's indexes (`stores.mongo.ensure_indexes`). The tree:

    root  -- about a tenth of all members are its direct members;
             its team is everyone else
    c1 <- c2 <- ... <- c30   a chain under the root: its leaf has 30 ancestors
    hub   -- a direct member of the root with exactly 1,000 direct members
             at every size (a fixed fan-out, to tell fan-out from tree size)
    the rest under random promoters at depth 1-2 (so depth <= 3)

and the chain-move mode's fields, as if everyone had joined in that mode:
every third member below depth 1 was passed up (its team owner is its
upline's upline), every other one is owned by its upline; `owner_ids`,
`team_owner_id` and `team_size` consistent with that.

Timed, through the project's own code (median of up to --runs runs after a
warm-up, each run a fresh round trip); a team page is what the endpoints do:
MemberStore.get(member), then MemberStore.team_page(member, level, 20, after):

    root: direct members, page 1  level 1, no cursor
    root: team size               MemberStore.get(root)["team_count"]  (find_one by _id)
    root: whole team, page 1 / 2  the whole team; page 2 passes the cursor of page 1
    leaf: chain 30 deep           MemberStore.get(leaf)["ancestor_ids"], then MemberStore.several(ids)
                                  (one find({_id: {$in: ids}}))
    root: owned, page 1 / 2       what ?relation=owned does: MemberStore.get(root), then
                                  MemberStore.owned_page(root, 20, after)
  and, to explain what the figures show:
    hub: direct members, page 1 / page 2 (page 2 passes `after`, the cursor of page 1)

Target: each query's time at the largest size about equal to its time at the
smallest (ratio ~1). Each find a query sent (recorded by a command listener)
is then explained (SecantusDB answers explain): its plan and what it examined.

Before loading, the load rate is measured on a small probe tree and the load
time of each size projected; a size whose projected load exceeds
--max-load-minutes is replaced by the largest size that fits (say so with
--max-load-minutes 0 to load it anyway). Every query runs under a
client-side timeout (--query-timeout), and a query stops being repeated once
--budget seconds are spent on it (after at least --min-runs runs). Exit status 0
only when every query is right and within the target ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from array import array
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Iterator

import pymongo
from pymongo import monitoring
from pymongo.errors import PyMongoError

from bench.harness import run_bounded
from stores.embedded import EmbeddedServer, secantusdb_uri, start_secantusdb
from stores.members import NEWEST_FIELDS, TEAM_LEVEL_FIELDS, MemberStore, new_member_fields
from stores.mongo import ensure_indexes, open_mongo

DIRECT_FIELD, TEAM_FIELD = TEAM_LEVEL_FIELDS[1], TEAM_LEVEL_FIELDS[None]


async def team_page(store: MemberStore, member_id: str, direct_only: bool, limit: int,
                    after: tuple[datetime, str] | None) -> list[dict]:
    """What the team endpoints do: read the member (its counters and newest times), then the page."""
    member = await store.get(member_id)
    return await store.team_page(member, 1 if direct_only else None, limit, after)


async def owned_page(store: MemberStore, member_id: str, limit: int, after: tuple[datetime, str] | None) -> list[dict]:
    """What `?relation=owned` does: read the member, then the page of the members it owns."""
    return await store.owned_page(await store.get(member_id), limit, after)


CHAIN_DEPTH = 30
HUB_DIRECT = 1_000
ROOT_SHARE = 10  # every tenth member is a direct member of the root
MAX_DEPTH = 3  # of the members outside the chain
PAGE = 20
PROBE_SIZE = 20_000
LOADED = "loaded"
MAX_RATIO = 2.0  # "about 1": what the exit status holds each query's largest/smallest time to
# Loading slows as the collection grows: on the 2-CPU machine this was written on, a 20,000-member probe
# projected 12.1 min for 1,000,000 members and the real load took 16.1 min. Projections are scaled by this.
LOAD_SLOWDOWN = 1.35
LOAD_TIMEOUT_SECONDS = 120.0  # the load's bulk writes are large, and no request waits on them
T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


# --------------------------------------------------------------------------- the tree


class Tree:
    """Parents before children (a parent's index is smaller); ids are assigned as documents are made."""

    def __init__(self, size: int, seed: int):
        if size < 32 + 10:
            raise ValueError("a tree needs at least 42 members")
        rng = random.Random(seed)
        self.size = size
        parent = array("i", [-1]) * size
        depth = array("b", [0]) * size
        for i in range(1, CHAIN_DEPTH + 1):  # the chain c1..c30 under the root
            parent[i], depth[i] = i - 1, i
        self.leaf = CHAIN_DEPTH
        self.hub = CHAIN_DEPTH + 1
        parent[self.hub], depth[self.hub] = 0, 1
        hub_direct = min(HUB_DIRECT, size // 10)
        first = self.hub + 1
        for i in range(first, first + hub_direct):  # the hub's fixed fan-out
            parent[i], depth[i] = self.hub, 2
        pool: list[int] = []  # promoters: members at depth < MAX_DEPTH outside the chain and the hub's team
        for i in range(first + hub_direct, size):
            p = 0 if (i % ROOT_SHARE == 0 or not pool) else pool[rng.randrange(len(pool))]
            parent[i], depth[i] = p, depth[p] + 1
            if depth[i] < MAX_DEPTH:
                pool.append(i)
        # The chain-move mode: every third member below depth 1 passed up to its upline's upline.
        owner = array("i", [-1]) * size
        for i in range(1, size):
            owner[i] = parent[parent[i]] if depth[i] > 1 and i % 3 == 2 else parent[i]
        team_size = array("i", [0]) * size
        for i in range(size - 1, 0, -1):
            team_size[owner[i]] += team_size[i] + 1
        direct = array("i", [0]) * size
        team = array("i", [0]) * size
        # The newest direct member and the newest anywhere below, by index (bound_at grows with it); 0: none.
        newest_direct = array("i", [0]) * size
        newest_team = array("i", [0]) * size
        for i in range(size - 1, 0, -1):
            p = parent[i]
            direct[p] += 1
            team[p] += team[i] + 1
            newest_direct[p] = max(newest_direct[p], i)
            newest_team[p] = max(newest_team[p], newest_team[i], i)
        self.parent, self.depth, self.direct, self.team = parent, depth, direct, team
        self.owner, self.team_size = owner, team_size
        self.newest_direct, self.newest_team = newest_direct, newest_team
        self.ids: list[str | None] = [None] * size
        self.mean_ancestors = sum(depth) / size

    def bound_at(self, i: int) -> datetime | None:
        return T0 + timedelta(seconds=i) if i else None  # newer members have larger indexes

    def docs(self, start: int, stop: int) -> list[dict]:
        out = []
        parent, ids = self.parent, self.ids
        for i in range(start, stop):
            bound_at = self.bound_at(i)
            doc = new_member_fields(bound_at - timedelta(minutes=5) if bound_at else T0 - timedelta(days=1))
            ids[i] = doc["_id"]
            ancestors = []
            p = parent[i]
            while p >= 0:
                ancestors.append(ids[p])
                p = parent[p]
            owners = []
            o = self.owner[i]
            while o >= 0:
                owners.append(ids[o])
                o = self.owner[o]
            doc.update(nickname=f"m{i}", ancestor_ids=ancestors, direct_count=self.direct[i], team_count=self.team[i],
                       role="boss" if i == 0 else "agent", owner_ids=owners, team_owner_id=owners[0] if owners else None,
                       team_size=self.team_size[i])
            for field_name, newest in ((NEWEST_FIELDS[1], self.newest_direct[i]), (NEWEST_FIELDS[None], self.newest_team[i])):
                if newest:
                    doc[field_name] = self.bound_at(newest)
            if i:
                doc.update(upline_id=ancestors[0], bound_at=bound_at, bind_source="oa_scan")
            out.append(doc)
        return out

    def newest_child(self, of: int) -> int:
        return max(i for i in range(self.size - 1, 0, -1) if self.parent[i] == of)

    def newest_owned(self, of: int) -> int:
        return max(i for i in range(self.size - 1, 0, -1) if self.owner[i] == of)


@dataclass
class Loaded:
    size: int
    tree: Tree
    insert_seconds: float
    index_seconds: float
    per_index: dict[str, float] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return self.insert_seconds + self.index_seconds


async def load(db: Any, size: int, seed: int, batch: int, verbose: bool) -> Loaded:
    """Generate (in a thread, one batch ahead) and insert_many; then the project's indexes."""
    started = time.perf_counter()
    tree = await asyncio.to_thread(Tree, size, seed)
    members = db["members"]
    bounds = [(i, min(i + batch, size)) for i in range(0, size, batch)]
    pending = asyncio.create_task(asyncio.to_thread(tree.docs, *bounds[0]))
    last_report = time.perf_counter()
    for k in range(len(bounds)):
        docs = await pending
        if k + 1 < len(bounds):  # ids of this batch are set: the next one may refer to them
            pending = asyncio.create_task(asyncio.to_thread(tree.docs, *bounds[k + 1]))
        await members.insert_many(docs, ordered=False)
        if verbose and time.perf_counter() - last_report > 30:
            done = bounds[k][1]
            rate = done / (time.perf_counter() - started)
            print(f"    ... {done:,} inserted, {rate:,.0f}/s, ~{(size - done) / rate:.0f} s of inserts left",
                  flush=True)
            last_report = time.perf_counter()
    insert_seconds = time.perf_counter() - started
    if verbose:
        print(f"    ... {size:,} inserted in {insert_seconds:.0f} s; ensure_indexes (one call, no progress) ...",
              flush=True)
    started = time.perf_counter()
    await ensure_indexes(db)
    return Loaded(size, tree, insert_seconds, time.perf_counter() - started)


# --------------------------------------------------------------------------- servers


class FindRecorder(monitoring.CommandListener):
    """The find commands a query sends, to explain exactly those."""

    def __init__(self) -> None:
        self.sent: list[dict] | None = None

    @contextmanager
    def recording(self) -> Iterator[list[dict]]:
        self.sent = []
        try:
            yield self.sent
        finally:
            self.sent = None

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if self.sent is not None and event.command_name == "find":
            self.sent.append({key: event.command[key] for key in ("filter", "sort", "limit") if key in event.command})

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


finds = FindRecorder()


@asynccontextmanager
async def running_server(directory: Path) -> AsyncIterator[tuple[EmbeddedServer, Any]]:
    """A SecantusDB storing in `directory` and its database, all three gone afterwards."""
    server = start_secantusdb(directory / "data", directory / "secantusdb.log")
    try:
        client, db = open_mongo(secantusdb_uri(server.port), "bench_team",
                                LOAD_TIMEOUT_SECONDS, event_listeners=[finds])
        try:
            yield server, db
        finally:
            await client.close()
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def peak_rss_mb(server: EmbeddedServer) -> float | None:
    try:
        for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


# --------------------------------------------------------------------------- queries


@dataclass
class Timing:
    samples: list[float] = field(default_factory=list)
    timed_out: float | None = None
    note: str = ""

    @property
    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None


async def timed(run: Callable[[], Awaitable[Any]], check: Callable[[Any], str | None], args: argparse.Namespace,
                min_runs: int) -> Timing:
    timing = Timing()
    spent = 0.0
    first = True
    while len(timing.samples) < args.runs and (len(timing.samples) < min_runs or spent < args.budget):
        start = time.perf_counter()
        try:
            with pymongo.timeout(args.query_timeout):
                result = await run()
        except PyMongoError as error:
            if "timed out" in str(error).lower() or "exceeded time limit" in str(error).lower():
                timing.timed_out = args.query_timeout
                timing.note = f"timed out after {args.query_timeout:g} s"
                return timing
            raise
        elapsed = time.perf_counter() - start
        spent += elapsed
        if first:
            problem = check(result)
            if problem:
                timing.note = f"WRONG RESULT: {problem}"
        # The first run warms caches and is not counted, unless it is slow enough that repeating it costs a lot.
        if not first or elapsed >= 1.0:
            timing.samples.append(elapsed)
        first = False
    return timing


def plan_summary(explained: dict) -> str:
    stages = []
    node = explained.get("queryPlanner", {}).get("winningPlan", {})
    while node:
        name = node.get("stage", "?")
        if node.get("indexName"):
            name += f"({node['indexName']}{', multikey' if node.get('isMultiKey') else ''})"
        stages.append(name)
        node = node.get("inputStage") or {}
    text = " <- ".join(stages) or "?"
    stats = explained.get("executionStats")
    if stats:
        def n(key: str) -> str:
            value = stats.get(key)
            return f"{value:,}" if isinstance(value, int) else "?"
        text += (f"; examined {n('totalKeysExamined')} keys, {n('totalDocsExamined')} docs,"
                 f" {n('nReturned')} matched (before any sort and limit)")
    return text


async def explain(db: Any, find: dict, cheap: bool) -> str:
    verbosity = "executionStats" if cheap else "queryPlanner"
    try:
        with pymongo.timeout(120):
            return plan_summary(await db.command("explain", {"find": "members", **find}, verbosity=verbosity))
    except PyMongoError as error:
        return f"explain failed: {error}"


@dataclass
class Query:
    key: str
    label: str
    run: Callable[[], Awaitable[Any]]
    check: Callable[[Any], str | None]
    diagnostic: bool = False


def queries(store: MemberStore, tree: Tree, hub_cursor: tuple[datetime, str],
            root_cursor: tuple[datetime, str], owned_cursor: tuple[datetime, str]) -> list[Query]:
    ids = tree.ids
    root, leaf, hub = ids[0], ids[tree.leaf], ids[tree.hub]
    newest_direct = ids[tree.newest_child(0)]
    newest_hub = ids[tree.newest_child(tree.hub)]
    chain = [ids[i] for i in range(tree.leaf - 1, -1, -1)]

    def page_check(expected_first: str, key: str, value: str) -> Callable[[list[dict]], str | None]:
        def check(page: list[dict]) -> str | None:
            if len(page) != PAGE or page[0]["_id"] != expected_first:
                return f"got {len(page)} members, first {page[0]['_id'] if page else None}, expected {expected_first}"
            if any((value not in m["ancestor_ids"]) if key == "ancestor_ids" else m[key] != value for m in page):
                return "a member outside the team"
            if [m["bound_at"] for m in page] != sorted((m["bound_at"] for m in page), reverse=True):
                return "not newest first"
            return None
        return check

    async def team_size() -> int:
        return (await store.get(root))["team_count"]

    async def chain_read() -> dict[str, dict]:
        member = await store.get(leaf)
        return await store.several(member["ancestor_ids"])

    def chain_check(found: dict[str, dict]) -> str | None:
        return None if sorted(found) == sorted(chain) and len(found) == CHAIN_DEPTH else f"{len(found)} ancestors"

    def after_check(cursor: tuple[datetime, str]) -> Callable[[list[dict]], str | None]:
        def check(page: list[dict]) -> str | None:
            if len(page) != PAGE or any((m["bound_at"], m["_id"]) >= cursor for m in page):
                return f"{len(page)} members, not all after the cursor"
            return None
        return check

    return [
        Query("root_direct", "root: direct members, page 1",
              lambda: team_page(store, root, True, PAGE, None), page_check(newest_direct, DIRECT_FIELD, root)),
        Query("root_size", "root: team size (team_count)", team_size,
              lambda n: None if n == tree.size - 1 else f"team_count {n}, expected {tree.size - 1}"),
        Query("root_team", "root: whole team, page 1",
              lambda: team_page(store, root, False, PAGE, None), page_check(ids[tree.size - 1], TEAM_FIELD, root)),
        Query("root_team2", "root: whole team, page 2",
              lambda: team_page(store, root, False, PAGE, root_cursor), after_check(root_cursor)),
        Query("leaf_chain", f"leaf: chain {CHAIN_DEPTH} deep", chain_read, chain_check),
        Query("root_owned", "root: owned (chain-move), page 1", lambda: owned_page(store, root, PAGE, None),
              page_check(ids[tree.newest_owned(0)], "team_owner_id", root)),
        Query("root_owned2", "root: owned (chain-move), page 2", lambda: owned_page(store, root, PAGE, owned_cursor),
              after_check(owned_cursor)),
        Query("hub_page1", f"hub ({HUB_DIRECT:,} direct): page 1",
              lambda: team_page(store, hub, True, PAGE, None), page_check(newest_hub, DIRECT_FIELD, hub),
              diagnostic=True),
        Query("hub_page2", f"hub ({HUB_DIRECT:,} direct): page 2",
              lambda: team_page(store, hub, True, PAGE, hub_cursor), after_check(hub_cursor), diagnostic=True),
    ]


# --------------------------------------------------------------------------- main


def fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.2f} ms" if seconds < 1 else f"{seconds:.2f} s"


def fits(per_doc: float, budget_seconds: float) -> int:
    """The largest round size whose projected load fits the budget."""
    raw = int(budget_seconds / per_doc)
    if raw < 1000:
        return raw
    scale = 10 ** (int(math.log10(raw)) - 1)
    return raw // scale * scale


async def probe(workdir: Path, args: argparse.Namespace) -> float:
    """Seconds per member (generate + insert + index) measured on a small tree."""
    async with running_server(workdir / "probe") as (_, db):
        loaded = await load(db, args.probe, args.seed, args.batch, verbose=False)
    print(f"Load rate, probe of {args.probe:,} members: inserts {args.probe / loaded.insert_seconds:,.0f}/s "
          f"({loaded.insert_seconds:.1f} s), then ensure_indexes {loaded.index_seconds:.1f} s: "
          f"{args.probe / loaded.seconds:,.0f} members/s overall")
    return loaded.seconds / args.probe


async def measure_size(size: int, workdir: Path, args: argparse.Namespace) -> dict:
    directory = workdir / f"n{size}"
    async with running_server(directory) as (server, db):
        print(f"\n{size:,} members: loading into {directory / 'data'} (SecantusDB on 127.0.0.1:{server.port})",
              flush=True)
        loaded = await load(db, size, args.seed, args.batch, verbose=True)
        tree = loaded.tree
        count = await db["members"].estimated_document_count()
        print(f"  loaded {count:,} in {loaded.seconds:.1f} s: insert_many {loaded.insert_seconds:.1f} s "
              f"({size / loaded.insert_seconds:,.0f}/s), ensure_indexes {loaded.index_seconds:.1f} s; "
              f"{size / loaded.seconds:,.0f} members/s overall")
        print(f"  root: {tree.direct[0]:,} direct, {tree.team[0]:,} in team; hub: {tree.direct[tree.hub]:,} direct; "
              f"leaf: {CHAIN_DEPTH} ancestors; mean ancestors per member {tree.mean_ancestors:.2f}")
        store = MemberStore(db)
        cursors = []
        for member, direct_only in ((tree.hub, True), (0, False)):
            first_page = await team_page(store, tree.ids[member], direct_only, PAGE, None)
            cursors.append((first_page[-1]["bound_at"], first_page[-1]["_id"]))
        first_owned = await owned_page(store, tree.ids[0], PAGE, None)
        cursors.append((first_owned[-1]["bound_at"], first_owned[-1]["_id"]))
        results: dict[str, Any] = {LOADED: loaded}
        for query in queries(store, tree, *cursors):
            timing = await timed(query.run, query.check, args, 1 if query.diagnostic else args.min_runs)
            cheap = timing.median is not None and timing.median < 2.0
            with finds.recording() as sent:
                await query.run()
            plans = [await explain(db, find, cheap) for find in sent]
            results[query.key] = (query, timing, plans)
            print(f"  {query.label:<34} median {fmt_seconds(timing.median):>10} of {len(timing.samples):>2} runs"
                  f"{'  ' + timing.note if timing.note else ''}; {len(sent)} find(s)", flush=True)
            for plan in plans:
                print(f"  {'':<34} plan: {plan}")
        rss = peak_rss_mb(server)
        if rss:
            print(f"  SecantusDB peak memory (VmHWM): {rss:,.0f} MB")
        return results


async def run(args: argparse.Namespace) -> int:
    sizes = [int(s) for s in args.sizes.split(",")]
    workdir = Path(tempfile.mkdtemp(prefix="bench-team-", dir=args.tmp))
    print(f"Team reads against tree size, python -m bench.team; storage under {workdir} (removed at the end); "
          f"{os.cpu_count()} CPUs")
    try:
        per_doc = await probe(workdir, args)
        budget = args.max_load_minutes * 60
        chosen = []
        for size in sizes:
            projected = size * per_doc * (LOAD_SLOWDOWN if size > args.probe else 1)
            line = f"  {size:,} members: projected load {projected / 60:.1f} min"
            if size > args.probe:
                line += f" (the probe's rate x {LOAD_SLOWDOWN}, the slowdown seen at 1M)"
            if budget and projected > budget:
                smaller = fits(per_doc * LOAD_SLOWDOWN, budget)
                line += (f" > --max-load-minutes {args.max_load_minutes:g}: using {smaller:,} instead "
                         f"(--max-load-minutes 0 loads {size:,} anyway)")
                size = smaller
            print(line)
            chosen.append(size)
        sizes = sorted(set(chosen))
        results = {size: await measure_size(size, workdir, args) for size in sizes}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if report(sizes, results, args) else 1


def report(sizes: list[int], results: dict[int, dict], args: argparse.Namespace) -> bool:
    """The table; True when every (non-diagnostic) query is right and its ratio within MAX_RATIO."""
    small, large = sizes[0], sizes[-1]
    width = 14
    print(f"\nMedian time per query (client round trips included; up to {args.runs} runs after a warm-up, "
          f"fewer once {args.budget:g} s are spent on a query):")
    head = f"  {'query':<36}" + "".join(f"{f'{s:,}':>{width}}" for s in sizes)
    if len(sizes) > 1:
        head += f"{f'{large:,}/{small:,}':>{width + 4}}"
    print(head)
    keys = [k for k in results[small] if k != LOADED]
    for key in keys:
        query = results[small][key][0]
        cells = []
        for size in sizes:
            timing = results[size][key][1]
            cells.append(f">{timing.timed_out:g} s" if timing.timed_out else fmt_seconds(timing.median))
        line = f"  {query.label + (' *' if query.diagnostic else ''):<36}" + "".join(f"{c:>{width}}" for c in cells)
        if len(sizes) > 1:
            a, b = results[small][key][1].median, results[large][key][1].median
            line += f"{(f'{b / a:.1f}' if a and b else '-'):>{width + 4}}"
        print(line)
    print("  * diagnostic rows: the hub has the same 1,000 direct members at every size")
    wrong = [f"{results[size][key][0].label} at {size:,}: {results[size][key][1].note}"
             for size in sizes for key in keys if results[size][key][1].note]
    slow = []
    for key in keys:
        query, a, b = results[small][key][0], results[small][key][1].median, results[large][key][1].median
        if not query.diagnostic and (a is None or b is None or b / a > MAX_RATIO):
            slow.append(query.label)
    load = "".join(f"{f'{results[s][LOADED].seconds:.0f} s':>{width}}" for s in sizes)
    print(f"  {'load (insert_many + ensure_indexes)':<36}{load}")
    for line in wrong:
        print(f"  ! {line}")
    if len(sizes) > 1:
        print(f"  target: each query's {large:,}/{small:,} ratio about 1 (at most {MAX_RATIO:g}): "
              + ("met" if not slow else f"NOT met by {', '.join(slow)}"))
    return not wrong and not slow


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,1000000")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--min-runs", type=int, default=3)
    parser.add_argument("--budget", type=float, default=20.0, help="seconds per query after which runs stop")
    parser.add_argument("--query-timeout", type=float, default=300.0, help="client-side timeout per query run")
    parser.add_argument("--max-load-minutes", type=float, default=8.0, help="0: load every size however long")
    parser.add_argument("--batch", type=int, default=10_000, help="documents per insert_many")
    parser.add_argument("--probe", type=int, default=PROBE_SIZE, help="members in the load-rate probe")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--tmp", default="/tmp", help="where the storage directories go")
    parser.add_argument("--max-minutes", type=float, default=90.0, help="hard stop for the whole run")
    args = parser.parse_args()
    return run_bounded(run(args), args.max_minutes * 60)


if __name__ == "__main__":
    sys.exit(main())
