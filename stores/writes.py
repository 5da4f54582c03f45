"""One step's writes, committed together in one MongoDB transaction.

A service reads what it needs, decides (with the pure domain), and collects
every write of the step in a `WriteSet`: guarded updates (each must match
exactly one document, or the step was planned on a stale read), inserts,
plain updates, increments of counters (those of one document added up into
one update), and ledger entries with the `$inc` of their accounts. `commit`
sends them in one transaction with one command per collection and kind for
every `MAX_STATEMENTS` operations, so the round trips of a step grow by one
per that many documents, not one per document (a commission chain is one
`insert_many`); `merged` makes the steps of many (a worker's batch of
orders) one such set.
A transaction that inserts ledger entries also inserts one tally of what
they add to each day's totals, marked uncounted: the worker adds the tallies
into the shop's totals afterwards (`services.stats.StatsService.count_totals`),
so that no step moving one member's money waits on a document every step
shares.

Nothing is read-modify-written: balances and counters change by `$inc`.
Inserts carry deterministic `_id`s (idempotency keys), so a step replayed
after it committed fails on a duplicate key and changes nothing; `commit`
reports it as `Conflict`, like a failed guard, and the caller re-reads.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TypeVar

import pymongo
from pymongo import AsyncMongoClient, UpdateMany, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, ConnectionFailure, DuplicateKeyError, ExecutionTimeout, PyMongoError

from distribution.ledger import Entry
from distribution.stats import add_movement
from stores.ledger import ACCOUNTS, LEDGER_ENTRIES, LEDGER_TALLIES, account_update, entry_document, tally_document

log = logging.getLogger(__name__)

DUPLICATE_KEY = 11000

T = TypeVar("T")
# Told a transaction's session id before the transaction starts.
Announce = Callable[[Mapping[str, Any]], Awaitable[None]]

# Operations per command in a transaction. While a transaction's command runs, the database may hold others at
# its door: SecantusDB looks at every open transaction, each under its own lock, whenever any transaction starts
# a statement or commits, and a retryable write waits behind that look. One command of 200 updates (a worker's
# batch) kept a merchant's single event insert waiting 200-300 ms; commands of 32 (a full batch's order guards)
# bound the wait to tens of milliseconds. Every command also costs SecantusDB a fixed toll besides its
# statements (its session, profiling level and collection options looked up): commands of 8 drained bursts
# 7-30% slower, for no shorter wait.
MAX_STATEMENTS = 32


class Conflict(Exception):
    """What the step was planned on has changed (or the step is already done): re-read and plan again."""


@dataclass(frozen=True)
class Increment:
    """Counters of one document to add to, the document created with `on_insert` when missing. A write set adds
    up the increments of one document into one update: a batch that pays one promoter for several orders, or
    counts them into one shard of the shop's totals, writes each such document once."""

    document_id: str
    counters: Mapping[str, int]
    on_insert: Mapping[str, Any] = field(default_factory=dict)

    def plus(self, other: Increment) -> Increment:
        counters = Counter(self.counters)
        counters.update(other.counters)
        return replace(self, counters=dict(counters))

    def operation(self) -> UpdateOne:
        update: dict[str, Any] = {"$inc": dict(self.counters)}
        if self.on_insert:
            update["$setOnInsert"] = dict(self.on_insert)
        return UpdateOne({"_id": self.document_id}, update, upsert=True)


@dataclass
class WriteSet:
    guards: dict[str, list[UpdateOne]] = field(default_factory=dict)
    inserts: dict[str, list[dict]] = field(default_factory=dict)
    updates: dict[str, list[UpdateOne | UpdateMany]] = field(default_factory=dict)
    increments: dict[str, dict[str, Increment]] = field(default_factory=dict)  # {collection: {document id: ...}}
    account_deltas: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    ledger_totals: dict[str, Counter] = field(default_factory=dict)  # {China day: {ledger field: fen}}
    after_commit: list[Callable[[], Awaitable[object]]] = field(default_factory=list)

    def guard(self, collection: str, filter: dict, update: dict) -> None:
        """An update that must match exactly one document when committed."""
        self.guards.setdefault(collection, []).append(UpdateOne(filter, update))

    def insert(self, collection: str, documents: Iterable[dict]) -> None:
        documents = list(documents)
        if documents:
            self.inserts.setdefault(collection, []).extend(documents)

    def update(self, collection: str, operation: UpdateOne | UpdateMany | Increment) -> None:
        if isinstance(operation, Increment):
            documents = self.increments.setdefault(collection, {})
            earlier = documents.get(operation.document_id)
            documents[operation.document_id] = operation if earlier is None else earlier.plus(operation)
        else:
            self.updates.setdefault(collection, []).append(operation)

    def ledger(self, entries: Iterable[Entry], at: datetime) -> None:
        """Append `entries` and change their accounts' balances by the same amounts, in the same transaction."""
        documents = []
        for entry in entries:
            documents.append(entry_document(entry, at))
            self.account_deltas[entry.account_id][entry.bucket] += entry.amount_fen
            add_movement(self.ledger_totals, entry.kind, entry.bucket, entry.amount_fen, at)
        if documents:
            self.insert(LEDGER_ENTRIES, documents)

    def then(self, action: Callable[[], Awaitable[object]]) -> None:
        """Run `action` once the transaction has committed (e.g. enqueue the jobs it calls for)."""
        self.after_commit.append(action)

    @property
    def empty(self) -> bool:
        return not (self.guards or self.inserts or self.updates or self.increments or self.account_deltas)

    def all_updates(self) -> dict[str, list[UpdateOne | UpdateMany]]:
        """The plain updates and the added-up increments, by collection."""
        collections = dict.fromkeys([*self.updates, *self.increments])
        return {collection: [*self.updates.get(collection, []),
                             *(each.operation() for each in self.increments.get(collection, {}).values())]
                for collection in collections}


def merged(steps: Iterable[WriteSet]) -> WriteSet:
    """The writes of many steps as one, for one transaction: each step's guards still guard it (a stale step fails
    the whole), collections keep the order in which the steps first name them, and the deltas of an account that
    several steps move are added up into one update."""
    whole = WriteSet()
    for step in steps:
        for collection, operations in step.guards.items():
            whole.guards.setdefault(collection, []).extend(operations)
        for collection, documents in step.inserts.items():
            whole.insert(collection, documents)
        for collection, operations in step.updates.items():
            whole.updates.setdefault(collection, []).extend(operations)
        for collection, documents in step.increments.items():
            for increment in documents.values():
                whole.update(collection, increment)
        for account_id, deltas in step.account_deltas.items():
            whole.account_deltas[account_id].update(deltas)
        for day, totals in step.ledger_totals.items():
            whole.ledger_totals.setdefault(day, Counter()).update(totals)
        whole.after_commit.extend(step.after_commit)
    return whole


async def commit(client: AsyncMongoClient, db: AsyncDatabase, writes: WriteSet,
                 announce: Announce | None = None) -> None:
    """Apply `writes` in one transaction (retried on transient errors), then run its after-commit actions.
    `announce`: as `run_transaction`'s.

    Raises `Conflict`, having changed nothing, when a guard matches no document
    or an insert meets a duplicate key.
    """
    if not writes.empty:
        account_ops = [account_update(account_id, deltas, None) for account_id, deltas in writes.account_deltas.items()]
        inserts = {**writes.inserts, **({LEDGER_TALLIES: [tally_document(writes.ledger_totals)]}
                                        if writes.ledger_totals else {})}
        # Balances and the updates of collections this set inserts nothing into (the shared counters) go before
        # the inserts: a transaction that meets another's write on them fails, and is retried, before doing the
        # inserts' work. Updates that may touch a document this set inserts come after the inserts.
        updates = writes.all_updates()
        shared = {collection: operations for collection, operations in updates.items() if collection not in inserts}
        after_inserts = {collection: operations for collection, operations in updates.items() if collection in inserts}

        async def in_transaction(session: AsyncClientSession) -> None:
            async def update(groups: Iterable[tuple[str, list[UpdateOne | UpdateMany]]]) -> None:
                for collection, operations in groups:
                    for piece in _pieces(operations):
                        await db[collection].bulk_write(piece, ordered=False, session=session)

            for collection, operations in writes.guards.items():
                for piece in _pieces(operations):
                    result = await db[collection].bulk_write(piece, ordered=True, session=session)
                    if result.matched_count != len(piece):
                        raise Conflict(f"{collection}: {len(piece) - result.matched_count} guarded document(s) changed")
            await update([(ACCOUNTS, account_ops), *shared.items()])
            for collection, documents in inserts.items():
                for piece in _pieces(documents):
                    await db[collection].insert_many(piece, ordered=True, session=session)
            await update(after_inserts.items())

        try:
            await run_transaction(client, in_transaction, announce)
        except DuplicateKeyError as error:
            raise Conflict(f"already applied: {error}") from None
        except BulkWriteError as error:
            if _only_duplicates(error):
                raise Conflict("already applied (duplicate key)") from None
            raise
    for action in writes.after_commit:
        await action()


async def run_transaction(client: AsyncMongoClient, step: Callable[[AsyncClientSession], Awaitable[T]],
                          announce: Announce | None = None) -> T:
    """`step` in one transaction, committed whole or not at all; what `step` returns. `announce` is given the
    transaction's session id before it starts (`stores.commit_turns` names it for whoever has to end it).

    Transient errors (an election, a dropped connection, a write conflict) are
    retried, but within the client's time limit of one operation (its
    `timeoutMS`, see `stores.mongo`) rather than the driver's two minutes: a
    request whose MongoDB went away mid-step fails in seconds instead of hanging.
    """
    async with client.start_session() as session:
        if announce is not None:
            await announce(session.session_id)
        try:
            with pymongo.timeout(client.options.timeout):
                return await session.with_transaction(step)
        except (ConnectionFailure, ExecutionTimeout):
            # Not awaited: the caller meets its error within the time limit, whatever the server does next.
            ending = asyncio.create_task(end_on_server(client, session.session_id))
            _ENDING.add(ending)
            ending.add_done_callback(_ENDING.discard)
            raise


# The tasks `end_on_server` runs in, held until done (the event loop keeps only a weak reference).
_ENDING: set[asyncio.Task] = set()


async def end_on_server(client: AsyncMongoClient, session_id: Mapping[str, Any]) -> None:
    """Abort the session's transaction on the server, in a time limit of its own.

    A transaction that ran out of time: the driver's own abort runs in the time
    limit that just ran out, so it is never sent. A transaction whose process
    died: nothing sends one. Either stays open on the server, holding every
    document it wrote, until the server reaps it (60 s on mongod and
    SecantusDB). Meanwhile every transaction writing one of those documents
    (the shop's day totals: all of a worker's batches) fails on a write
    conflict until its own limit, and is left open the same way.
    """
    try:
        with pymongo.timeout(client.options.timeout):
            await client.admin.command("killSessions", [session_id])
    except PyMongoError as error:  # the server is gone (and its transactions with it), or too slow to answer
        log.info("a transaction that failed may stay open until the server reaps it: %s", type(error).__name__)


def _pieces(items: list[T]) -> list[list[T]]:
    return [items[start:start + MAX_STATEMENTS] for start in range(0, len(items), MAX_STATEMENTS)]


def _only_duplicates(error: BulkWriteError) -> bool:
    write_errors = error.details.get("writeErrors", [])
    return bool(write_errors) and all(each.get("code") == DUPLICATE_KEY for each in write_errors)
