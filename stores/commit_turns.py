"""Transactions that take turns across processes, and the one a holder that died left open.

The workers' order batches all write the shop's day totals, and so do the
counts that add the ledger's tallies and the binds up into them
(`services.stats`): they commit in turn (`stores.locks.in_turn`), in one
line whichever process runs them. A worker killed inside one (kill -9,
the machine gone) sends no abort, and MongoDB and SecantusDB keep its
transaction open for 60 s, holding every document it wrote: every later
holder's transaction would fail on a write conflict for that minute. So the
holder names its transaction's session in Redis while it runs, and gives the
name back once it is over; a holder that finds a name there (its holder never
gave it back: it died, or ran out of its time and ended its own on the server
already) ends that session on the server before its own transaction starts.
The turn outlives a dead holder by at most its `seconds`, and so does the
stall it leaves.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from bson.binary import UUID_SUBTYPE, Binary
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from stores.locks import REDIS_UNAVAILABLE, give_back, in_turn, milliseconds
from stores.writes import Announce, WriteSet, commit, end_on_server

log = logging.getLogger(__name__)

# How long a name waits for the next holder: the database reaps a transaction left idle this long by itself.
SERVER_REAPS_SECONDS = 60.0


class CommitTurns:
    """One line, named `name` in Redis, for the transactions that write the shop's day totals."""

    def __init__(self, redis: Redis, client: AsyncMongoClient, name: str):
        self.redis = redis
        self.client = client
        self.name = name

    async def commit(self, db: AsyncDatabase, writes: WriteSet) -> None:
        """`stores.writes.commit` in turn. A turn lasts at most the client's time limit of one operation, as the
        commit does; without Redis the commit goes without its turn."""
        async with self.turn(self.client.options.timeout) as announce:
            await commit(self.client, db, writes, announce)

    @asynccontextmanager
    async def turn(self, seconds: float) -> AsyncIterator[Announce | None]:
        """Wait in line, held for at most `seconds` (`in_turn`); yields the `announce` to give the transaction run
        in the turn (`stores.writes.commit`), or None when the wait ran out, or Redis could not be reached, without
        the turn (the transaction is as correct without it, and must not end the holder's)."""
        async with in_turn(self.redis, self.name, seconds) as held:
            if not held:
                yield None
                return
            running = _RunningSession(self.redis, self.client, f"{self.name}:session")
            try:
                yield running.announce
            finally:
                await running.give_back()


class _RunningSession:
    """The name of the session a turn's transaction runs in, kept in Redis while it runs."""

    def __init__(self, redis: Redis, client: AsyncMongoClient, key: str):
        self.redis = redis
        self.client = client
        self.key = key
        self.token: str | None = None

    async def announce(self, session_id: Mapping[str, Any]) -> None:
        self.token = bytes(session_id["id"]).hex()
        named = await self.redis.set(self.key, self.token, px=milliseconds(SERVER_REAPS_SECONDS), get=True)
        if named is not None and (left_open := named.decode()) != self.token:
            await end_on_server(self.client, {"id": Binary(bytes.fromhex(left_open), UUID_SUBTYPE)})

    async def give_back(self) -> None:
        """Once the transaction is over, committed or not: a Redis that cannot be reached now leaves the name to
        expire, and what follows the commit still runs."""
        if self.token is None:
            return
        try:
            await give_back(self.redis, self.key, self.token)
        except REDIS_UNAVAILABLE as error:
            log.warning("Redis unavailable (%s): a finished transaction's session stays named until it expires",
                        type(error).__name__)
